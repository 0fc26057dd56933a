/**
 * An OpenAI-compatible embedding server (TEI, vLLM, llama.cpp's server, LocalAI, OpenAI
 * itself): `POST /v1/embeddings` with an array `input` and `encoding_format: "float"`,
 * models from `GET /v1/models`.
 *
 * The configured URL (`openai+http://host:8080`) is the server's root, or a base that
 * already ends in `/v1`; either way calls go to `<root>/v1/...`. The API key comes from the
 * options (the factory passes `SOLLOL_OPENAI_API_KEY`) or from the URL's userinfo
 * (`openai+https://:KEY@host` or `openai+https://KEY@host`); it is sent as a bearer token
 * and never appears in the backend's id, its errors or its probe messages.
 */
import { Pool } from 'undici';
import { countField, type EmbedResultWithUsage } from './embedExtras.js';
import { answerText, readOpenAIEmbed } from './embedJson.js';
import { callSignal } from './callSignal.js';
import { requestBytes } from './requestBytes.js';
import { BackendError, coerceBackendError } from './errors.js';
import { invalidVector, toFloat32 } from './vectorCheck.js';
import { DEFAULT_GENERATION_TIMEOUT_MS, forwardedErrorOf, type ForwardedResponse, type GenerationBackend, type GenerationPath } from './generation.js';
import { httpTarget, type HttpBackendOptions, type HttpTarget } from './httpTarget.js';
import type { BackendProbe, EmbeddingBackend, EmbedRequest } from './types.js';

export interface OpenAIBackendOptions extends HttpBackendOptions {
  /** Bearer token; wins over a key in the URL (`url` may carry the key as userinfo). */
  readonly apiKey?: string;
}

interface HttpAnswer {
  readonly status: number;
  readonly text: string;
  /** `x-sollol-instance` when the server is a sollol gateway (its own /v1). */
  readonly sollolInstance?: string;
}

export class OpenAIBackend implements EmbeddingBackend, GenerationBackend {
  readonly kind = 'openai' as const;
  readonly id: string;
  readonly maxConcurrency: number;
  /** 0 unless `?parallel=N` says the server also serves `/v1/chat/completions` and `/v1/completions`. */
  readonly generationParallel: number;
  private readonly generationTimeoutMs: number;
  private readonly target: HttpTarget;
  private readonly apiBase: string;
  private readonly pool: Pool;
  private readonly timeoutMs: number;
  private readonly probeTimeoutMs: number;
  private readonly secret: string | undefined;
  /** Model ids exactly as the server listed them, to undo the pool's `:latest` naming. */
  private served = new Set<string>();

  constructor(options: OpenAIBackendOptions) {
    const parsed = new URL(options.url);
    const fromUrl = decodeURIComponent(parsed.password || parsed.username) || undefined;
    parsed.username = '';
    parsed.password = '';
    this.secret = options.apiKey || fromUrl;
    this.target = httpTarget(parsed.toString(), this.secret);
    this.id = this.target.displayUrl;
    this.apiBase = this.target.basePath.endsWith('/v1') ? this.target.basePath : `${this.target.basePath}/v1`;
    this.maxConcurrency = options.maxConcurrency ?? 2;
    this.timeoutMs = options.timeoutMs;
    this.generationParallel = options.parallel ?? 0;
    this.generationTimeoutMs = options.generationTimeoutMs ?? DEFAULT_GENERATION_TIMEOUT_MS;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 3000;
    this.pool = new Pool(this.target.origin, { connections: this.maxConcurrency + this.generationParallel + 2, keepAliveTimeout: 30_000 });
  }

  async embed(request: EmbedRequest): Promise<EmbedResultWithUsage> {
    const body: Record<string, unknown> = { model: this.serverModelName(request.model), input: request.inputs, encoding_format: 'float' };
    if (request.options.dimensions !== undefined) body.dimensions = request.options.dimensions;
    const raw = await this.call('POST', '/embeddings', JSON.stringify(body), this.timeoutMs, request.signal, true);
    const expected = request.inputs.length;
    if (raw.status >= 200 && raw.status < 300) {
      const fast = readOpenAIEmbed(raw.bytes, expected);
      if (fast) return withUsage(fast.vectors, fast.promptTokens);
    }
    // Not vouched for by the byte reader (an error, base64 vectors, anything unusual): JSON.parse says why.
    const answer = { status: raw.status, text: answerText(raw.bytes) };
    this.throwIfError(answer);
    const parsed = parseJson(answer.text, this.id) as { data?: unknown; usage?: { prompt_tokens?: unknown } };
    return withUsage(this.vectorsOf(parsed.data, expected), parsed.usage?.prompt_tokens);
  }

  /**
   * The pool names models the Ollama way (`x` is `x:latest`); an OpenAI-compatible server
   * knows only its own ids, so `x:latest` goes out as `x` when that is what it listed.
   */
  private serverModelName(model: string): string {
    if (this.served.has(model)) return model;
    if (model.endsWith(':latest')) {
      const bare = model.slice(0, -':latest'.length);
      if (this.served.has(bare)) return bare;
    }
    return model;
  }

  /** `data[i].embedding` in `index` order; a float list, or base64 float32 should a server ignore the format. */
  private vectorsOf(data: unknown, expected: number): Float32Array[] {
    if (!Array.isArray(data) || data.length !== expected) {
      throw new BackendError('BACKEND_UNAVAILABLE', `Backend ${this.id} returned ${Array.isArray(data) ? data.length : 'no'} embeddings for ${expected} inputs`);
    }
    const vectors = new Array<Float32Array | undefined>(expected);
    data.forEach((item: unknown, position) => {
      const { index, embedding } = (item ?? {}) as { index?: unknown; embedding?: unknown };
      const at = typeof index === 'number' && Number.isInteger(index) ? index : position;
      if (at < 0 || at >= expected || vectors[at] !== undefined) {
        throw new BackendError('BACKEND_UNAVAILABLE', `Backend ${this.id} returned embeddings with bad or repeated indices`);
      }
      vectors[at] = this.toVector(embedding);
    });
    return vectors as Float32Array[];
  }

  private toVector(value: unknown): Float32Array {
    if (typeof value === 'string' && value.length > 0) {
      const bytes = Buffer.from(value, 'base64');
      if (bytes.length > 0 && bytes.length % 4 === 0) {
        const vector = new Float32Array(bytes.length / 4);
        for (let i = 0; i < vector.length; i++) vector[i] = bytes.readFloatLE(i * 4);
        return vector;
      }
    }
    const vector = toFloat32(value);
    if (typeof vector === 'string') throw invalidVector(this.id, vector);
    return vector;
  }

  /** Same mapping as the Ollama adapter: the item codes mean the same whatever the server. */
  private throwIfError(answer: HttpAnswer): void {
    if (answer.status >= 200 && answer.status < 300) return;
    const detail = `Backend ${this.id} answered ${answer.status}: ${this.redact(errorMessage(answer.text))}`;
    if (answer.status === 404) throw new BackendError('MODEL_NOT_FOUND', detail, { status: 404 });
    if (answer.status === 400 || answer.status === 413 || answer.status === 422) {
      throw new BackendError('INPUT_REJECTED', detail, { status: answer.status });
    }
    // 401/403 (a wrong key), 429, 5xx and anything else: this node cannot serve now.
    throw new BackendError('BACKEND_UNAVAILABLE', detail, { status: answer.status });
  }

  /** Servers sometimes quote the key they refused ("Incorrect API key provided: sk-..."). */
  private redact(text: string): string {
    return this.secret ? text.split(this.secret).join('***') : text;
  }

  private call(method: 'GET' | 'POST', path: string, body: string | undefined, timeoutMs: number, signal?: AbortSignal): Promise<HttpAnswer>;
  /** The same, the answer kept as bytes (for readOpenAIEmbed). */
  private call(method: 'POST', path: string, body: string, timeoutMs: number, signal: AbortSignal | undefined, asBytes: true): Promise<{ status: number; bytes: Uint8Array }>;
  private async call(
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    timeoutMs: number,
    signal?: AbortSignal,
    asBytes?: true,
  ): Promise<HttpAnswer | { status: number; bytes: Uint8Array }> {
    const call = callSignal(timeoutMs, signal);
    try {
      const options = {
        method,
        path: this.apiBase + path,
        headers: { accept: 'application/json', ...this.target.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body,
      };
      if (asBytes) return await requestBytes(this.pool, options, call.signal);
      const response = await this.pool.request({ ...options, signal: call.signal });
      const instance = response.headers['x-sollol-instance'];
      const text = await response.body.text();
      return typeof instance === 'string' ? { status: response.statusCode, text, sollolInstance: instance } : { status: response.statusCode, text };
    } catch (error) {
      if (signal?.aborted) throw new BackendError('CANCELLED', `Call to ${this.id} was aborted`, { cause: error });
      if (call.timedOut) {
        throw new BackendError('BACKEND_TIMEOUT', `Backend ${this.id} did not answer within ${timeoutMs} ms`, { cause: error });
      }
      const coerced = coerceBackendError(error, this.id);
      throw new BackendError(coerced.code, this.redact(coerced.message), { cause: error });
    } finally {
      call.done();
    }
  }

  /** An OpenAI-compatible server has no Ollama routes; its own chat and completions, when it serves them. */
  canGenerate(path: GenerationPath): boolean {
    return this.generationParallel > 0 && path.startsWith('/v1/');
  }

  /** Forwards a generation body to `<root>/v1/...`, the model renamed as the server lists it. */
  async forward(path: GenerationPath, body: string, signal?: AbortSignal): Promise<ForwardedResponse> {
    if (!this.canGenerate(path)) throw new BackendError('INPUT_REJECTED', `Backend ${this.id} does not serve ${path}`);
    let sent = body;
    try {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      if (typeof parsed.model === 'string') sent = JSON.stringify({ ...parsed, model: this.serverModelName(parsed.model) });
    } catch {
      // not JSON: the server will say so
    }
    try {
      const response = await this.pool.request({
        method: 'POST',
        path: this.apiBase + path.slice('/v1'.length),
        headers: { ...this.target.headers, 'content-type': 'application/json' },
        body: sent,
        ...(signal ? { signal } : {}),
        headersTimeout: this.generationTimeoutMs,
        bodyTimeout: this.generationTimeoutMs,
      });
      const type = response.headers['content-type'];
      return { status: response.statusCode, contentType: (Array.isArray(type) ? type[0] : type) ?? 'application/json', body: response.body };
    } catch (error) {
      if (signal?.aborted) throw new BackendError('CANCELLED', `Call to ${this.id} was aborted`, { cause: error });
      const coerced = coerceBackendError(error, this.id);
      throw new BackendError(coerced.code, this.redact(coerced.message), { cause: error });
    }
  }

  forwardedError(response: ForwardedResponse): Promise<BackendError> {
    return forwardedErrorOf(this.id, response, (answer) => this.throwIfError(answer));
  }

  async probe(signal?: AbortSignal): Promise<BackendProbe> {
    try {
      const answer = await this.call('GET', '/models', undefined, this.probeTimeoutMs, signal);
      if (answer.status !== 200) {
        const why = answer.status === 401 || answer.status === 403 ? ' (check SOLLOL_OPENAI_API_KEY)' : '';
        return { healthy: false, models: [], error: `${this.apiBase}/models answered ${answer.status}${why}` };
      }
      const data = (parseJson(answer.text, this.id) as { data?: unknown }).data;
      const models = (Array.isArray(data) ? data : [])
        .map((m: unknown) => (m as { id?: unknown } | null)?.id)
        .filter((id): id is string => typeof id === 'string' && id !== '');
      this.served = new Set(models);
      // A sollol gateway's own /v1 says who it is: pointing a gateway at itself is refused.
      return answer.sollolInstance === undefined ? { healthy: true, models } : { healthy: true, models, sollolInstance: answer.sollolInstance };
    } catch (error) {
      return { healthy: false, models: [], error: this.redact(coerceBackendError(error, this.id).message) };
    }
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => this.pool.destroy());
  }
}

function withUsage(vectors: Float32Array[], promptTokensField: unknown): EmbedResultWithUsage {
  const promptTokens = countField(promptTokensField);
  return promptTokens === undefined ? { vectors } : { vectors, promptTokens };
}

function parseJson(text: string, backendId: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BackendError('BACKEND_UNAVAILABLE', `Backend ${backendId} answered with a body that is not JSON`);
  }
}

/** OpenAI's `{"error": {"message"}}`, TEI's `{"error": "..."}`, or the text itself. */
function errorMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: unknown; message?: unknown; detail?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
    const nested = (parsed.error as { message?: unknown } | undefined)?.message;
    if (typeof nested === 'string') return nested;
    if (typeof parsed.message === 'string') return parsed.message;
    if (typeof parsed.detail === 'string') return parsed.detail;
  } catch {
    // not JSON: use the text itself
  }
  return text.slice(0, 200).trim() || 'no message';
}
