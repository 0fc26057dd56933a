/**
 * The Ollama-compatible sync API, so existing Ollama clients can point at the gateway:
 * `/api/embed`, legacy `/api/embeddings`, `/api/tags`, `/api/ps`, `/api/version`, and
 * `/api/generate` / `/api/chat` forwarded (streamed NDJSON passed through as it arrives)
 * to an Ollama node that has the model. Embedding calls take the pool's interactive lane.
 * Errors answer in Ollama's shape `{"error", "code"}` (this plugin's own error handler).
 */
import { createHash } from 'node:crypto';
import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EMBEDDED_MODEL } from '../../backends/embedded/backend.js';
import type { PassThroughEmbedOptions } from '../../backends/embedExtras.js';
import { canonicalModel } from '../../backends/modelNames.js';
import { OllamaBackend, type OllamaModelEntry } from '../../backends/ollama.js';
import type { BackendPool } from '../../backends/pool.js';
import { formatCount } from '../../errors.js';
import { VERSION } from '../../version.js';
import { CompatError, sendOllamaError, toCompatError } from '../compatErrors.js';
import { forwardGeneration } from '../generationForward.js';
import { clientSignal, embedThroughPool, jsonPieces, sendJsonPieces, vectorJson, type SyncEmbedSettings } from '../syncEmbed.js';
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

async function forward(pool: BackendPool, path: '/api/generate' | '/api/chat', _what: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = objectBody(request.body);
  return forwardGeneration(pool, path, modelField(body), body, reply);
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
