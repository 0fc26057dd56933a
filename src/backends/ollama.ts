/**
 * An Ollama node: `POST /api/embed` with an array `input` over keep-alive connections.
 * Ollama older than 0.3 has no `/api/embed` (its router answers 404 "404 page not found");
 * then the node is switched to the legacy `POST /api/embeddings`, one document per call.
 */
import { Pool } from 'undici';
import { BackendError, coerceBackendError } from './errors.js';
import { httpTarget, type HttpTarget } from './httpTarget.js';
import type { BackendProbe, EmbeddingBackend, EmbedRequest, EmbedResult } from './types.js';

export interface OllamaBackendOptions {
  readonly url: string;
  /** Calls the pool may keep in flight here. @defaultValue 2 */
  readonly maxConcurrency?: number;
  /** Whole-call timeout. */
  readonly timeoutMs: number;
  /** Timeout of health checks. @defaultValue 3000 */
  readonly probeTimeoutMs?: number;
}

interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

export class OllamaBackend implements EmbeddingBackend {
  readonly kind = 'ollama' as const;
  readonly id: string;
  readonly maxConcurrency: number;
  private readonly target: HttpTarget;
  private readonly pool: Pool;
  private readonly timeoutMs: number;
  private readonly probeTimeoutMs: number;
  private legacyOnly = false;

  constructor(options: OllamaBackendOptions) {
    this.target = httpTarget(options.url);
    this.id = this.target.displayUrl;
    this.maxConcurrency = options.maxConcurrency ?? 2;
    this.timeoutMs = options.timeoutMs;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 3000;
    this.pool = new Pool(this.target.origin, { connections: this.maxConcurrency + 4, keepAliveTimeout: 30_000 });
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    if (!this.legacyOnly) {
      const answer = await this.post('/api/embed', embedBody(request), request.signal);
      if (!isMissingEndpoint(answer)) return { vectors: this.parseEmbed(answer, request.inputs.length) };
      this.legacyOnly = true;
    }
    return this.embedLegacy(request);
  }

  private async embedLegacy(request: EmbedRequest): Promise<EmbedResult> {
    const vectors: Float32Array[] = [];
    for (const input of request.inputs) {
      const body = { model: request.model, prompt: input, keep_alive: request.options.keepAlive };
      const answer = await this.post('/api/embeddings', body, request.signal);
      this.throwIfError(answer);
      const parsed = parseJson(answer.text) as { embedding?: unknown };
      vectors.push(toVector(parsed.embedding, this.id));
    }
    return { vectors };
  }

  private parseEmbed(answer: HttpAnswer, expected: number): Float32Array[] {
    this.throwIfError(answer);
    const parsed = parseJson(answer.text) as { embeddings?: unknown };
    if (!Array.isArray(parsed.embeddings) || parsed.embeddings.length !== expected) {
      throw new BackendError('BACKEND_UNAVAILABLE', `Backend ${this.id} returned ${describeCount(parsed.embeddings)} embeddings for ${expected} inputs`);
    }
    return parsed.embeddings.map((v) => toVector(v, this.id));
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
    const timeout = AbortSignal.timeout(timeoutMs);
    const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
    try {
      const response = await this.pool.request({
        method,
        path: this.target.basePath + path,
        headers: { ...this.target.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body,
        signal: combined,
      });
      return { status: response.statusCode, text: await response.body.text() };
    } catch (error) {
      if (signal?.aborted) throw new BackendError('CANCELLED', `Call to ${this.id} was aborted`, { cause: error });
      if (timeout.aborted) {
        throw new BackendError('BACKEND_TIMEOUT', `Backend ${this.id} did not answer within ${timeoutMs} ms`, { cause: error });
      }
      throw coerceBackendError(error, this.id);
    }
  }

  async probe(signal?: AbortSignal): Promise<BackendProbe> {
    try {
      const version = await this.call('GET', '/api/version', undefined, this.probeTimeoutMs, signal);
      if (version.status !== 200) return { healthy: false, models: [], error: `/api/version answered ${version.status}` };
      const sollolInstance = (parseJson(version.text) as { sollol_instance?: unknown }).sollol_instance;
      const tags = await this.call('GET', '/api/tags', undefined, this.probeTimeoutMs, signal);
      if (tags.status !== 200) return { healthy: false, models: [], error: `/api/tags answered ${tags.status}` };
      const models = ((parseJson(tags.text) as { models?: { name?: unknown }[] }).models ?? [])
        .map((m) => m.name)
        .filter((name): name is string => typeof name === 'string');
      return typeof sollolInstance === 'string' ? { healthy: true, models, sollolInstance } : { healthy: true, models };
    } catch (error) {
      return { healthy: false, models: [], error: coerceBackendError(error, this.id).message };
    }
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => this.pool.destroy());
  }
}

function embedBody(request: EmbedRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { model: request.model, input: request.inputs, truncate: request.options.truncate };
  if (request.options.dimensions !== undefined) body.dimensions = request.options.dimensions;
  if (request.options.keepAlive !== undefined) body.keep_alive = request.options.keepAlive;
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
  if (!Array.isArray(value) || value.length === 0) {
    throw new BackendError('BACKEND_UNAVAILABLE', `Backend ${backendId} returned an embedding that is not a list of numbers`);
  }
  return Float32Array.from(value as number[]);
}

function describeCount(value: unknown): string {
  return Array.isArray(value) ? String(value.length) : 'no';
}
