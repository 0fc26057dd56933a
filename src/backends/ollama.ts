/**
 * An Ollama node: `POST /api/embed` with an array `input` over keep-alive connections.
 * Ollama older than 0.3 has no `/api/embed` (its router answers 404 "404 page not found");
 * then the node is switched to the legacy `POST /api/embeddings`, one document per call.
 * The sync API also forwards `/api/generate` and `/api/chat` here (`forward`), and reads
 * the node's model list details and `/api/ps` (`tagEntries`, `ps`).
 */
import { Pool, type Dispatcher } from 'undici';
import { countField, modelOptionsOf, type EmbedResultWithUsage } from './embedExtras.js';
import { answerText, readOllamaEmbed } from './embedJson.js';
import { callSignal } from './callSignal.js';
import { requestBytes, type BytesAnswer } from './requestBytes.js';
import { BackendError, coerceBackendError } from './errors.js';
import { invalidVector, toFloat32 } from './vectorCheck.js';
import { DEFAULT_GENERATION_PARALLEL, DEFAULT_GENERATION_TIMEOUT_MS, forwardedErrorOf, type ForwardedResponse, type GenerationBackend, type GenerationPath } from './generation.js';
import { httpTarget, type HttpBackendOptions, type HttpTarget } from './httpTarget.js';
import type { BackendProbe, EmbeddingBackend, EmbedRequest, EmbedResult } from './types.js';

/** One model as the node's `/api/tags` or `/api/ps` lists it (Ollama's JSON, kept as is). */
export type OllamaModelEntry = Readonly<Record<string, unknown>> & { readonly name: string };

export type { ForwardedResponse } from './generation.js';

export type OllamaBackendOptions = HttpBackendOptions;

interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

export class OllamaBackend implements EmbeddingBackend, GenerationBackend {
  readonly kind = 'ollama' as const;
  readonly id: string;
  readonly maxConcurrency: number;
  readonly generationParallel: number;
  private readonly target: HttpTarget;
  private readonly pool: Pool;
  private readonly timeoutMs: number;
  private readonly generationTimeoutMs: number;
  private readonly probeTimeoutMs: number;
  private legacyOnly = false;
  /** Model entries of the last successful probe's `/api/tags`, as the node sent them. */
  private lastTags: OllamaModelEntry[] = [];
  private closed = false;

  constructor(options: OllamaBackendOptions) {
    this.target = httpTarget(options.url);
    this.id = this.target.displayUrl;
    this.maxConcurrency = options.maxConcurrency ?? 2;
    this.timeoutMs = options.timeoutMs;
    this.generationParallel = options.parallel ?? DEFAULT_GENERATION_PARALLEL;
    this.generationTimeoutMs = options.generationTimeoutMs ?? DEFAULT_GENERATION_TIMEOUT_MS;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 3000;
    // Generations get connections of their own, so a long one never holds up an embed call.
    this.pool = new Pool(this.target.origin, { connections: this.maxConcurrency + this.generationParallel + 4, keepAliveTimeout: 30_000 });
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    if (!this.legacyOnly) {
      const raw = await this.callRaw('/api/embed', JSON.stringify(embedBody(request)), request.signal);
      const expected = request.inputs.length;
      if (raw.status >= 200 && raw.status < 300) {
        const fast = readOllamaEmbed(raw.bytes, expected);
        if (fast) return withUsage(fast.vectors, fast.promptEvalCount, fast.loadDuration);
      }
      // Not vouched for by the byte reader (an error, or anything unusual): JSON.parse says why.
      const answer = { status: raw.status, text: answerText(raw.bytes) };
      if (!isMissingEndpoint(answer)) return this.parseEmbed(answer, expected);
      this.legacyOnly = true;
    }
    return this.embedLegacy(request);
  }

  /** A POST whose answer is kept as bytes, for readOllamaEmbed. */
  private async callRaw(path: string, body: string, signal?: AbortSignal): Promise<BytesAnswer> {
    return this.send('POST', path, body, this.timeoutMs, signal, (options, callSignal) => requestBytes(this.pool, options, callSignal));
  }

  private async embedLegacy(request: EmbedRequest): Promise<EmbedResult> {
    const vectors: Float32Array[] = [];
    const modelOptions = modelOptionsOf(request.options);
    for (const input of request.inputs) {
      const body = { model: request.model, prompt: input, keep_alive: request.options.keepAlive, ...(modelOptions ? { options: modelOptions } : {}) };
      const answer = await this.post('/api/embeddings', body, request.signal);
      this.throwIfError(answer);
      const parsed = parseJson(answer.text) as { embedding?: unknown };
      vectors.push(toVector(parsed.embedding, this.id));
    }
    return { vectors };
  }

  private parseEmbed(answer: HttpAnswer, expected: number): EmbedResultWithUsage {
    this.throwIfError(answer);
    const parsed = parseJson(answer.text) as { embeddings?: unknown; prompt_eval_count?: unknown; load_duration?: unknown };
    if (!Array.isArray(parsed.embeddings) || parsed.embeddings.length !== expected) {
      throw new BackendError('BACKEND_UNAVAILABLE', `Backend ${this.id} returned ${describeCount(parsed.embeddings)} embeddings for ${expected} inputs`);
    }
    return withUsage(parsed.embeddings.map((v) => toVector(v, this.id)), parsed.prompt_eval_count, parsed.load_duration);
  }

  /** Ollama serves every generation route, its own and the OpenAI-compatible ones. */
  canGenerate(_path: GenerationPath): boolean {
    return true;
  }

  /**
   * Forwards a generation `POST` (sync routes and batch items) and answers as soon
   * as the node sent its headers; the body then streams through as it arrives. The generation
   * timeout bounds the wait for the headers and each silence between body chunks, not the
   * whole answer, so a long generation keeps streaming. Throws BackendError when the node
   * cannot be reached or does not answer in time; a non-2xx answer comes back as it is (read
   * it with `forwardedError`).
   */
  async forward(path: GenerationPath, body: string, signal?: AbortSignal): Promise<ForwardedResponse> {
    try {
      const response = await this.pool.request({
        method: 'POST',
        path: this.target.basePath + path,
        headers: { ...this.target.headers, 'content-type': 'application/json' },
        body,
        ...(signal ? { signal } : {}),
        headersTimeout: this.generationTimeoutMs,
        bodyTimeout: this.generationTimeoutMs,
      });
      const type = response.headers['content-type'];
      return {
        status: response.statusCode,
        contentType: (Array.isArray(type) ? type[0] : type) ?? 'application/json; charset=utf-8',
        body: response.body,
      };
    } catch (error) {
      if (signal?.aborted) throw new BackendError('CANCELLED', `Call to ${this.id} was aborted`, { cause: error });
      throw coerceBackendError(error, this.id);
    }
  }

  /** Reads a forwarded error answer into the BackendError its status means. */
  forwardedError(response: ForwardedResponse): Promise<BackendError> {
    return forwardedErrorOf(this.id, response, (answer) => this.throwIfError(answer));
  }

  /** Model entries of the node's `/api/tags` as of the last probe (names, sizes, digests, details). */
  tagEntries(): readonly OllamaModelEntry[] {
    return this.lastTags;
  }

  /** The node's `/api/ps` entries (models loaded now); throws BackendError. */
  async ps(signal?: AbortSignal): Promise<OllamaModelEntry[]> {
    const answer = await this.call('GET', '/api/ps', undefined, this.probeTimeoutMs, signal);
    this.throwIfError(answer);
    return modelEntries(parseJson(answer.text));
  }

  private throwIfError(answer: HttpAnswer): void {
    if (answer.status >= 200 && answer.status < 300) return;
    const message = errorMessage(answer.text);
    const detail = `Backend ${this.id} answered ${answer.status}: ${message}`;
    if (answer.status === 404) throw new BackendError('MODEL_NOT_FOUND', detail, { status: 404 });
    if (answer.status === 400 || answer.status === 413 || answer.status === 422) {
      throw new BackendError('INPUT_REJECTED', detail, { status: answer.status });
    }
    throw new BackendError('BACKEND_UNAVAILABLE', detail, { status: answer.status });
  }

  private async post(path: string, body: unknown, signal?: AbortSignal): Promise<HttpAnswer> {
    return this.call('POST', path, JSON.stringify(body), this.timeoutMs, signal);
  }

  private async call(method: 'GET' | 'POST', path: string, body: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<HttpAnswer> {
    return this.send(method, path, body, timeoutMs, signal, async (options, callSignal) => {
      const response = await this.pool.request({ ...options, signal: callSignal });
      return { status: response.statusCode, text: await response.body.text() };
    });
  }

  /** One request with the call's timeout and abort, its failures normalised to BackendErrors. */
  private async send<T>(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    exchange: (options: Dispatcher.DispatchOptions, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const call = callSignal(timeoutMs, signal);
    try {
      const headers = { ...this.target.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
      return await exchange({ method, path: this.target.basePath + path, headers, body }, call.signal);
    } catch (error) {
      if (signal?.aborted) throw new BackendError('CANCELLED', `Call to ${this.id} was aborted`, { cause: error });
      if (call.timedOut) {
        throw new BackendError('BACKEND_TIMEOUT', `Backend ${this.id} did not answer within ${timeoutMs} ms`, { cause: error });
      }
      throw coerceBackendError(error, this.id);
    } finally {
      call.done();
    }
  }

  async probe(signal?: AbortSignal): Promise<BackendProbe> {
    try {
      const version = await this.call('GET', '/api/version', undefined, this.probeTimeoutMs, signal);
      if (version.status !== 200) return { healthy: false, models: [], error: `/api/version answered ${version.status}` };
      const sollolInstance = (parseJson(version.text) as { sollol_instance?: unknown }).sollol_instance;
      const tags = await this.call('GET', '/api/tags', undefined, this.probeTimeoutMs, signal);
      if (tags.status !== 200) return { healthy: false, models: [], error: `/api/tags answered ${tags.status}` };
      const entries = modelEntries(parseJson(tags.text));
      this.lastTags = entries;
      const models = entries.map((m) => m.name);
      return typeof sollolInstance === 'string' ? { healthy: true, models, sollolInstance } : { healthy: true, models };
    } catch (error) {
      return { healthy: false, models: [], error: coerceBackendError(error, this.id).message };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.close().catch(() => this.pool.destroy());
  }
}

/** The `models` list of a `/api/tags` or `/api/ps` answer, entries without a string name dropped. */
function modelEntries(parsed: unknown): OllamaModelEntry[] {
  const models = (parsed as { models?: unknown } | null)?.models;
  if (!Array.isArray(models)) return [];
  return models.filter((m): m is OllamaModelEntry => typeof m === 'object' && m !== null && typeof (m as { name?: unknown }).name === 'string');
}

function embedBody(request: EmbedRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { model: request.model, input: request.inputs, truncate: request.options.truncate };
  if (request.options.dimensions !== undefined) body.dimensions = request.options.dimensions;
  if (request.options.keepAlive !== undefined) body.keep_alive = request.options.keepAlive;
  const modelOptions = modelOptionsOf(request.options);
  if (modelOptions !== undefined) body.options = modelOptions;
  return body;
}

/** Ollama's Go router answers an unknown path with a plain-text 404, a missing model with JSON. */
function isMissingEndpoint(answer: HttpAnswer): boolean {
  return answer.status === 404 && answer.text.trim() === '404 page not found';
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BackendError('BACKEND_UNAVAILABLE', `Backend answered with a body that is not JSON: ${text.slice(0, 120)}`);
  }
}

function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: use the text itself
  }
  return text.slice(0, 200).trim() || 'no message';
}

function toVector(value: unknown, backendId: string): Float32Array {
  const vector = toFloat32(value);
  if (typeof vector === 'string') throw invalidVector(backendId, vector);
  return vector;
}

function withUsage(vectors: Float32Array[], promptEvalCount: unknown, loadDuration: unknown): EmbedResultWithUsage {
  const promptTokens = countField(promptEvalCount);
  const loadDurationNs = countField(loadDuration);
  return {
    vectors,
    ...(promptTokens === undefined ? {} : { promptTokens }),
    ...(loadDurationNs === undefined ? {} : { loadDurationNs }),
  };
}

function describeCount(value: unknown): string {
  return Array.isArray(value) ? String(value.length) : 'no';
}
