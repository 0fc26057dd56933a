/**
 * The typed client of the SOLLOL Batch API, used by the `sollol` CLI and exported by the
 * package (`import { SollolClient } from 'sollol'`): submit, status, list, wait (live events,
 * reconnecting with Last-Event-ID), follow events, stream results (NDJSON, base64 decoded to
 * Float32Array), cancel, retry, delete. Runs on Node 20's global fetch; no other dependency.
 */
import { SollolApiError, SollolConnectionError, isRetryable } from './errors.js';
import { sseMessages, textLines } from './lines.js';
import { isTerminal, type EmbedOptions, type JobEvent, type JobStatus, type JobView, type ResultItem, type ResultsSummary, type RetryAnswer, type SubmitAnswer } from './types.js';

export interface ClientOptions {
  /** e.g. http://127.0.0.1:11434 */
  baseUrl: string;
  apiKey?: string;
  /** Used instead of the global fetch (a proxy agent, a test double of your own). */
  fetch?: typeof fetch;
}

export interface RetryPolicy {
  /** Give up after this long without a successful answer (ms). Default 5 minutes. */
  readonly maxWaitMs?: number;
  /** Called before each wait, e.g. to tell the user the gateway is unreachable. */
  readonly onRetry?: (error: Error, delayMs: number) => void;
  readonly signal?: AbortSignal;
}

export interface WaitOptions extends RetryPolicy {
  /** Every event as it comes (progress bars). */
  readonly onEvent?: (event: JobEvent) => void;
}

export interface ResultsOptions {
  offset?: number;
  limit?: number;
  /** Stream items as they finish while the job runs; ends when the job ends. */
  follow?: boolean;
  signal?: AbortSignal;
}

export interface GatewayLimits {
  maxBatchDocuments: number;
}

const MIN_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;

export class SollolClient {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.apiKey = options.apiKey;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /**
   * POST /api/batch/embed (one try: see {@link withRetries}). With `idempotencyKey`, a repeat of
   * the same submit (a retry after a lost answer, or a rerun after a crash) answers the first
   * job instead of making another (the gateway keeps the key for 24 hours).
   */
  async submit(
    model: string,
    documents: readonly string[],
    extra: { metadata?: Record<string, unknown>; options?: EmbedOptions; idempotencyKey?: string } = {},
  ): Promise<SubmitAnswer> {
    const { idempotencyKey, ...fields } = extra;
    const headers: Record<string, string> = idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey };
    const response = await this.request('POST', '/api/batch/embed', { model, documents, ...fields }, headers);
    return (await response.json()) as SubmitAnswer;
  }

  status(jobId: string): Promise<JobView> {
    return this.json('GET', `/api/batch/jobs/${encodeURIComponent(jobId)}`);
  }

  list(query: { limit?: number; status?: JobStatus } = {}): Promise<{ jobs: JobView[]; total: number }> {
    const params = new URLSearchParams();
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.status !== undefined) params.set('status', query.status);
    const qs = params.toString();
    return this.json('GET', `/api/batch/jobs${qs ? `?${qs}` : ''}`);
  }

  cancel(jobId: string): Promise<{ job_id: string; cancelled: true; message: string }> {
    return this.json('DELETE', `/api/batch/jobs/${encodeURIComponent(jobId)}`);
  }

  /** A new job re-running the failed, cancelled or unprocessed items of a finished one. */
  retry(jobId: string): Promise<RetryAnswer> {
    return this.json('POST', `/api/batch/jobs/${encodeURIComponent(jobId)}/retry`);
  }

  /** Deletes a finished job and its results now. */
  deleteResults(jobId: string): Promise<{ job_id: string; purged: true; message: string }> {
    return this.json('DELETE', `/api/batch/results/${encodeURIComponent(jobId)}`);
  }

  health(): Promise<Record<string, unknown>> {
    return this.json('GET', '/api/health');
  }

  stats(): Promise<Record<string, any>> {
    return this.json('GET', '/api/stats');
  }

  /**
   * The gateway's limits, read from it: its OpenAPI description holds the submit schema
   * (`documents.maxItems` is `--max-batch-documents`).
   */
  async limits(): Promise<GatewayLimits> {
    const doc = await this.json<any>('GET', '/openapi.json');
    const schema = doc?.paths?.['/api/batch/embed']?.post?.requestBody?.content?.['application/json']?.schema;
    const max = schema?.properties?.documents?.maxItems;
    if (!Number.isInteger(max) || max < 1) throw new SollolApiError(500, 'UNEXPECTED_ANSWER', 'The gateway did not describe its batch limit (documents.maxItems in /openapi.json)', undefined);
    return { maxBatchDocuments: max };
  }

  /**
   * The events of one job (SSE) until its `end` (or the stream breaks: the caller reconnects
   * with the last id; {@link wait} does).
   */
  async *events(jobId: string, options: { lastEventId?: number; signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (options.lastEventId !== undefined) headers['last-event-id'] = String(options.lastEventId);
    const response = await this.request('GET', `/api/batch/jobs/${encodeURIComponent(jobId)}/events`, undefined, headers, options.signal);
    if (!response.body) return;
    try {
      for await (const message of sseMessages(response.body)) {
        if (message.event !== 'status' && message.event !== 'progress' && message.event !== 'end') continue;
        const data = JSON.parse(message.data) as JobEvent['data'];
        const id = message.id !== undefined ? Number(message.id) : Number(data.event_id);
        yield { event: message.event, id, job_id: data.job_id, data };
        if (message.event === 'end') return;
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      throw new SollolConnectionError(`event stream of job ${jobId} broke: ${(error as Error).message}`, { cause: error });
    }
    // The body ended without an `end` event: the gateway went away.
    throw new SollolConnectionError(`event stream of job ${jobId} ended before the job did`);
  }

  /**
   * Waits for a job to end on its live events; survives gateway restarts and dropped
   * connections (reconnects with backoff and `Last-Event-ID`). Resolves to the final status.
   */
  async wait(jobId: string, options: WaitOptions = {}): Promise<JobView> {
    let lastEventId: number | undefined;
    await withRetries(async (progressed) => {
      for await (const event of this.events(jobId, { lastEventId, ...(options.signal ? { signal: options.signal } : {}) })) {
        progressed();
        lastEventId = event.id;
        options.onEvent?.(event);
        if (event.event === 'end') return;
      }
    }, options);
    return withRetries(() => this.status(jobId), options);
  }

  /**
   * The items of a job in index order (NDJSON, base64 vectors decoded to Float32Array), with
   * the summary line first via `onSummary`. `follow` streams a running job's items as they finish.
   */
  async *results(jobId: string, options: ResultsOptions & { onSummary?: (summary: ResultsSummary) => void } = {}): AsyncGenerator<ResultItem> {
    const params = new URLSearchParams({ format: 'ndjson', encoding_format: 'base64' });
    if (options.offset !== undefined) params.set('offset', String(options.offset));
    if (options.limit !== undefined) params.set('limit', String(options.limit));
    if (options.follow) params.set('follow', 'true');
    const response = await this.request('GET', `/api/batch/results/${encodeURIComponent(jobId)}?${params}`, undefined, { accept: 'application/x-ndjson' }, options.signal);
    if (!response.body) return;
    let first = true;
    let expected: number | undefined;
    let seen = 0;
    try {
      for await (const line of textLines(response.body)) {
        if (line === '') continue;
        if (first) {
          first = false;
          const summary = JSON.parse(line) as ResultsSummary;
          expected = options.follow ? Math.min(summary.total_items, summary.offset + summary.limit) - summary.offset : undefined;
          options.onSummary?.(summary);
          continue;
        }
        seen++;
        yield parseItem(line);
      }
    } catch (error) {
      if (error instanceof SyntaxError) throw error;
      if (options.signal?.aborted) throw error;
      throw new SollolConnectionError(`results of job ${jobId} broke off: ${(error as Error).message}`, { cause: error });
    }
    if (expected !== undefined && seen < expected) throw new SollolConnectionError(`results of job ${jobId} ended after ${seen} of ${expected} items`);
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, body);
    return (await response.json()) as T;
  }

  private async request(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.baseUrl}${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(signal ? { signal } : {}) });
    } catch (error) {
      if (signal?.aborted) throw error;
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new SollolConnectionError(`cannot reach the gateway at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (error as Error).message}`, { cause: error });
    }
    if (response.ok) return response;
    const text = await response.text().catch(() => '');
    let detail = text || response.statusText;
    let code = `HTTP_${response.status}`;
    try {
      const parsed = JSON.parse(text) as { detail?: string; code?: string };
      if (parsed.detail) detail = parsed.detail;
      if (parsed.code) code = parsed.code;
    } catch {
      // not JSON: keep the text
    }
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new SollolApiError(response.status, code, detail, Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : undefined);
  }
}

const FAST_ITEM = /^\{"index":(\d+),"embedding":"([A-Za-z0-9+/=]*)"(,"truncated":true)?\}$/;

/** One NDJSON item line: the common shape read without JSON.parse (less garbage per item), any other by it. */
function parseItem(line: string): ResultItem {
  const fast = FAST_ITEM.exec(line);
  if (fast) {
    const vector = base64Floats(fast[2]!);
    return fast[3] ? { index: Number(fast[1]), embedding: vector, truncated: true } : { index: Number(fast[1]), embedding: vector };
  }
  const value = JSON.parse(line);
  if (value.embedding === null) return { index: value.index, embedding: null, error: value.error, code: value.code };
  const vector = base64Floats(value.embedding as string);
  return value.truncated ? { index: value.index, embedding: vector, truncated: true } : { index: value.index, embedding: vector };
}

/** Little-endian float32 bytes in base64, decoded straight into the vector's own buffer. */
function base64Floats(base64: string): Float32Array {
  const vector = new Float32Array(Buffer.byteLength(base64, 'base64') / 4);
  Buffer.from(vector.buffer).write(base64, 'base64');
  return vector;
}

/**
 * Runs `attempt` until it succeeds, retrying retryable failures (connection errors, 429,
 * 502-504) with exponential backoff, or the gateway's `Retry-After` when it sent one, for up
 * to `maxWaitMs` since the start or the last time the attempt called `progressed`.
 */
export async function withRetries<T>(attempt: (progressed: () => void) => Promise<T>, policy: RetryPolicy = {}): Promise<T> {
  const maxWait = policy.maxWaitMs ?? 5 * 60_000;
  let started = Date.now();
  // An attempt that got somewhere (an event, an item) starts the clock again.
  const progressed = (): void => {
    started = Date.now();
  };
  let backoff = MIN_BACKOFF_MS;
  for (;;) {
    try {
      return await attempt(progressed);
    } catch (error) {
      if (!isRetryable(error) || policy.signal?.aborted) throw error;
      if (Date.now() - started > maxWait) throw error;
      const hinted = error instanceof SollolApiError && error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : undefined;
      const delay = Math.min(hinted ?? backoff, MAX_BACKOFF_MS * 6);
      policy.onRetry?.(error as Error, delay);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        policy.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        }, { once: true });
      });
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    }
  }
}

export { isTerminal };
