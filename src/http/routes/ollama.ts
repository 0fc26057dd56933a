/**
 * The Ollama-compatible sync API, so existing Ollama clients can point at the gateway:
 * `/api/embed`, legacy `/api/embeddings`, `/api/tags`, `/api/ps`, `/api/version`, and
 * `/api/generate` / `/api/chat` forwarded (streamed NDJSON passed through as it arrives)
 * to an Ollama node that has the model. Embedding calls take the pool's interactive lane.
 * Errors answer in Ollama's shape `{"error", "code"}` (this plugin's own error handler).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EMBEDDED_MODEL } from '../../backends/embedded/backend.js';
import { coerceBackendError } from '../../backends/errors.js';
import type { PassThroughEmbedOptions } from '../../backends/embedExtras.js';
import { canonicalModel } from '../../backends/modelNames.js';
import { OllamaBackend, type OllamaModelEntry } from '../../backends/ollama.js';
import type { BackendPool, Lease } from '../../backends/pool.js';
import { formatCount } from '../../errors.js';
import { VERSION } from '../../version.js';
import { CompatError, modelNotFound, noBackend, sendOllamaError, toCompatError } from '../compatErrors.js';
import { assertServed, clientSignal, embedThroughPool, jsonPieces, sendJsonPieces, vectorJson, type SyncEmbedSettings } from '../syncEmbed.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../validation.js';

/**
 * The Ollama version `/api/version` reports. Clients read this field as *Ollama's* version and
 * compare it to gate features: e.g. `/api/embed` with an input list needs >= 0.3.0, `truncate`
 * and `keep_alive` on it came with 0.3.x, and some clients refuse or fall back to the legacy
 * one-document `/api/embeddings` below that. The gateway implements the API of the Ollama
 * release the simulated node models (0.5.7), so that is what it claims, whatever the nodes
 * behind it run (an old node is driven through its legacy endpoint by the gateway). sollol's
 * own version is in `sollol_version` (and the `X-SOLLOL-Version` header): reporting "0.1.0"
 * as `version` would make clients take the gateway for a pre-embed Ollama.
 */
export const OLLAMA_API_VERSION = '0.5.7';

export interface OllamaRouteOptions extends SyncEmbedSettings {
  readonly pool: BackendPool;
  /** Most inputs one `/api/embed` call may carry (the batch document limit). */
  readonly maxInputs: number;
  readonly instanceId: string;
  readonly startedAt: number;
}

type Body = Record<string, unknown>;

export async function ollamaRoutes(app: FastifyInstance, options: OllamaRouteOptions): Promise<void> {
  const { pool } = options;
  app.setErrorHandler((error, request, reply) => sendOllamaError(reply, toCompatError(error, request)));

  app.get('/api/version', { schema: { tags: ['ollama'], summary: 'Version (Ollama-compatible), with the gateway instance' } }, async () => ({
    version: OLLAMA_API_VERSION,
    sollol_version: VERSION,
    sollol_instance: options.instanceId,
  }));

  app.post('/api/embed', { schema: { tags: ['ollama'], summary: 'Embed one input or a list (Ollama-compatible), through the interactive lane' } }, async (request, reply) => {
    const started = process.hrtime.bigint();
    const body = objectBody(request.body);
    const model = modelField(body);
    const inputs = embedInputs(body.input, options.maxInputs);
    const embedOptions = embedOptionsOf(body, booleanField(body, 'truncate') ?? true);
    const outcome = await embedThroughPool(pool, model, inputs, embedOptions, clientSignal(reply), options);
    const tail =
      `],"total_duration":${Number(process.hrtime.bigint() - started)},"load_duration":${Math.round(outcome.loadDurationNs)},` +
      `"prompt_eval_count":${outcome.promptTokens}}`;
    return sendJsonPieces(reply, jsonPieces(`{"model":${JSON.stringify(model)},"embeddings":[`, outcome.vectors, vectorJson, tail), outcome.vectors.length);
  });

  app.post('/api/embeddings', { schema: { tags: ['ollama'], summary: 'Embed one prompt (legacy Ollama endpoint)' } }, async (request, reply) => {
    const body = objectBody(request.body);
    const model = modelField(body);
    const prompt = body.prompt;
    if (prompt !== undefined && prompt !== null && typeof prompt !== 'string') throw new CompatError('INVALID_INPUT', 'prompt must be a string', { param: 'prompt' });
    const inputs = typeof prompt === 'string' && prompt !== '' ? [prompt] : [];
    // The legacy endpoint has no `truncate`: it always cuts to the context, as Ollama does.
    const outcome = await embedThroughPool(pool, model, inputs, embedOptionsOf(body, true), clientSignal(reply), options);
    const vector = outcome.vectors[0];
    return reply.type('application/json; charset=utf-8').send(`{"embedding":${vector ? vectorJson(vector) : '[]'}}`);
  });

  app.get('/api/tags', { schema: { tags: ['ollama'], summary: "Models served by the healthy nodes (Ollama's shape)" } }, async () => ({
    models: tagEntries(pool, options.startedAt),
  }));

  app.get('/api/ps', { schema: { tags: ['ollama'], summary: 'Models loaded on the healthy nodes now' } }, async (_request, reply) => ({
    models: await loadedModels(pool, clientSignal(reply)),
  }));

  for (const [path, what] of [
    ['/api/generate', 'generate'],
    ['/api/chat', 'chat'],
  ] as const) {
    app.post(path, { schema: { tags: ['ollama'], summary: `Forwarded to an Ollama node that has the model (${what}; NDJSON streamed through)` } }, async (request, reply) =>
      forward(pool, path, what, request, reply),
    );
  }
}

async function forward(pool: BackendPool, path: '/api/generate' | '/api/chat', what: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = objectBody(request.body);
  const model = modelField(body);
  const signal = clientSignal(reply);
  const { lease, backend } = await leaseOllamaNode(pool, model, what, signal);
  let released = false;
  const release = (): void => {
    if (!released) lease.release();
    released = true;
  };
  try {
    const response = await backend.forward(path, JSON.stringify(body), signal);
    if (response.status < 200 || response.status >= 300) throw await backend.forwardedError(response);
    reply.code(200).type(response.contentType);
    return reply.send(Readable.from(relay(response.body, backend.id, signal, release)));
  } catch (error) {
    release();
    throw error;
  }
}

/**
 * The node's body, chunk by chunk as it arrives. A failure after the first bytes cannot change
 * the status any more: it ends the stream with an `{"error", "code"}` line, as Ollama itself
 * does (its clients raise it). The slot is held until the last byte and then given back.
 */
async function* relay(body: AsyncIterable<Buffer> & { destroy(): void }, backendId: string, signal: AbortSignal, release: () => void): AsyncGenerator<Buffer | string> {
  try {
    for await (const chunk of body) yield chunk;
  } catch (error) {
    if (!signal.aborted) {
      const cause = coerceBackendError(error, backendId);
      const failure =
        cause.code === 'BACKEND_TIMEOUT'
          ? { error: `Backend ${backendId} went silent for longer than the backend timeout in the middle of the response`, code: 'BACKEND_TIMEOUT' }
          : { error: `Backend ${backendId} stopped answering in the middle of the response (${describeCause(error)})`, code: 'BACKEND_UNAVAILABLE' };
      yield `\n${JSON.stringify(failure)}\n`;
    }
  } finally {
    body.destroy();
    release();
  }
}

function describeCause(error: unknown): string {
  const err = error as { code?: unknown; message?: unknown } | undefined;
  return typeof err?.code === 'string' ? err.code : typeof err?.message === 'string' ? err.message : 'connection lost';
}

/**
 * A slot on an Ollama node serving `model`. Other backends (the embedded model, OpenAI-compatible
 * servers) embed but cannot generate or chat; a lease the pool grants on one of them is held
 * (so the next grant must come from another node) and given back once an Ollama node's arrives.
 */
async function leaseOllamaNode(pool: BackendPool, model: string, what: string, signal: AbortSignal): Promise<{ lease: Lease; backend: OllamaBackend }> {
  assertServed(pool, model);
  const key = canonicalModel(model);
  const ollamaServes = (): boolean => pool.snapshot().some((n) => n.healthy && n.kind === 'ollama' && n.models.includes(key));
  if (!ollamaServes()) {
    const kinds = [...new Set(pool.snapshot().filter((n) => n.healthy && n.models.includes(key)).map((n) => describeKind(n.kind)))].join(' and ');
    throw new CompatError(
      'UNSUPPORTED_OPERATION',
      `model ${JSON.stringify(model)} does not support ${what}: it is served only by ${kinds}, which can embed but not ${what}; use a model of an Ollama node`,
      { param: 'model' },
    );
  }
  const held: Lease[] = [];
  try {
    for (;;) {
      const lease = await pool.acquireInteractive(model, signal);
      if (lease.backend instanceof OllamaBackend) return { lease, backend: lease.backend };
      held.push(lease);
      if (!ollamaServes()) throw pool.anyHealthy() ? modelNotFound(model) : noBackend();
    }
  } finally {
    for (const lease of held) lease.release();
  }
}

function describeKind(kind: string): string {
  if (kind === 'embedded') return 'the embedded backend';
  if (kind === 'openai') return 'an OpenAI-compatible backend';
  return `a ${kind} backend`;
}

// ---- /api/tags and /api/ps ------------------------------------------------------------

function ollamaNode(pool: BackendPool, id: string): OllamaBackend | undefined {
  const backend = pool.backend(id);
  return backend instanceof OllamaBackend ? backend : undefined;
}

/** The union of the healthy nodes' models, with each Ollama node's own details where it gave them. */
function tagEntries(pool: BackendPool, startedAt: number): Record<string, unknown>[] {
  const entries = new Map<string, Record<string, unknown>>();
  for (const node of pool.snapshot()) {
    if (!node.healthy) continue;
    const known = ollamaNode(pool, node.url)?.tagEntries() ?? [];
    for (const model of node.models) {
      if (entries.has(model)) continue;
      const entry = known.find((e) => canonicalModel(e.name) === model);
      entries.set(model, entry ? { ...entry } : syntheticEntry(model, node.kind, startedAt));
    }
  }
  return [...entries.keys()].sort().map((name) => entries.get(name) as Record<string, unknown>);
}

/** An entry for a model whose node has no Ollama metadata (the embedded model, OpenAI-compatible servers). */
function syntheticEntry(name: string, kind: string, startedAt: number): Record<string, unknown> {
  const embedded = kind === 'embedded' && canonicalModel(name) === canonicalModel(EMBEDDED_MODEL);
  return {
    name,
    model: name,
    modified_at: new Date(startedAt).toISOString(),
    size: 0,
    digest: createHash('sha256').update(`sollol:${kind}:${name}`).digest('hex'),
    details: {
      parent_model: '',
      format: embedded ? 'tfjs' : '',
      family: embedded ? 'use' : '',
      families: embedded ? ['use'] : null,
      parameter_size: '',
      quantization_level: embedded ? 'F32' : '',
    },
  };
}

/** What the healthy nodes have loaded: each Ollama node's `/api/ps`, plus the embedded model once it ran. */
async function loadedModels(pool: BackendPool, signal?: AbortSignal): Promise<Record<string, unknown>[]> {
  const healthy = pool.snapshot().filter((n) => n.healthy);
  const lists = await Promise.all(
    healthy.map(async (node): Promise<readonly Record<string, unknown>[]> => {
      if (node.kind === 'ollama') return (await ollamaNode(pool, node.url)?.ps(signal).catch(() => [] as OllamaModelEntry[])) ?? [];
      if (node.kind === 'embedded' && node.calls > 0) {
        const entry = syntheticEntry(`${EMBEDDED_MODEL}:latest`, 'embedded', Date.now());
        // Loaded for the life of the process, like Ollama's keep_alive -1.
        return [{ ...entry, expires_at: '2318-01-01T00:00:00Z', size_vram: 0 }];
      }
      return [];
    }),
  );
  const byName = new Map<string, Record<string, unknown>>();
  for (const entry of lists.flat()) {
    const name = String(entry.name);
    if (!byName.has(name)) byName.set(name, { ...entry });
  }
  return [...byName.values()];
}

// ---- request parsing --------------------------------------------------------------------

function objectBody(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new CompatError('INVALID_BODY', 'request body must be a JSON object');
  }
  // Forwarded bodies are serialized again; a body nested thousands deep would overflow the stack there.
  if (nestedDeeperThan(body)) throw new CompatError('INVALID_BODY', `request body nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep`);
  return body as Body;
}

function modelField(body: Body): string {
  const model = body.model;
  if (model === undefined || model === null || model === '') throw new CompatError('INVALID_MODEL', 'model is required', { param: 'model' });
  if (typeof model !== 'string' || model.trim() === '') throw new CompatError('INVALID_MODEL', 'model must be a non-empty string', { param: 'model' });
  if (model.length > 200) throw new CompatError('INVALID_MODEL', 'model must be at most 200 characters', { param: 'model' });
  return model;
}

/** Ollama's `input`: a string (empty means none: the model is only checked) or a list of non-empty strings. */
function embedInputs(input: unknown, max: number): string[] {
  let inputs: string[];
  if (input === undefined || input === null) inputs = [];
  else if (typeof input === 'string') inputs = input === '' ? [] : [input];
  else if (Array.isArray(input)) {
    input.forEach((item, i) => {
      if (typeof item !== 'string') throw new CompatError('INVALID_INPUT', `input[${i}] must be a string, got ${item === null ? 'null' : typeof item}`, { param: 'input' });
      if (item === '') throw new CompatError('INVALID_INPUT', `input[${i}] is an empty string`, { param: 'input' });
    });
    inputs = input as string[];
  } else throw new CompatError('INVALID_INPUT', 'input must be a string or an array of strings', { param: 'input' });
  if (inputs.length > max) {
    throw new CompatError('BATCH_TOO_LARGE', `Maximum ${formatCount(max)} inputs per request. Got ${formatCount(inputs.length)}.`, { param: 'input' });
  }
  return inputs;
}

function booleanField(body: Body, key: string): boolean | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new CompatError('INVALID_OPTIONS', `${key} must be true or false`, { param: key });
  return value;
}

/** `dimensions`, `keep_alive` and the model `options`, checked for type and passed through. */
function embedOptionsOf(body: Body, truncate: boolean): PassThroughEmbedOptions {
  const { dimensions, keep_alive: keepAlive, options: modelOptions } = body;
  if (dimensions !== undefined && dimensions !== null && (typeof dimensions !== 'number' || !Number.isInteger(dimensions) || dimensions < 1 || dimensions > 65536)) {
    // The batch schema's bound: a node ignoring an absurd value must not turn it into a 502.
    throw new CompatError('INVALID_OPTIONS', 'dimensions must be an integer from 1 to 65536', { param: 'dimensions' });
  }
  if (keepAlive !== undefined && keepAlive !== null && typeof keepAlive !== 'string' && typeof keepAlive !== 'number') {
    throw new CompatError('INVALID_OPTIONS', 'keep_alive must be a duration string (e.g. "5m") or a number of seconds', { param: 'keep_alive' });
  }
  if (modelOptions !== undefined && modelOptions !== null && (typeof modelOptions !== 'object' || Array.isArray(modelOptions))) {
    throw new CompatError('INVALID_OPTIONS', 'options must be a JSON object', { param: 'options' });
  }
  return {
    truncate,
    ...(typeof dimensions === 'number' ? { dimensions } : {}),
    ...(typeof keepAlive === 'string' || typeof keepAlive === 'number' ? { keepAlive } : {}),
    ...(modelOptions ? { modelOptions: modelOptions as Record<string, unknown> } : {}),
  };
}
