/**
 * The interactive lane across processes: how a front gateway (`sollol up --redis --workers 0`)
 * answers the sync API (`/api/embed`, `/api/embeddings`, `/v1/embeddings`) through the
 * workers' nodes. Request/reply over Redis, never through the chunk queue, so a sync call
 * never waits behind batch chunks:
 * - the gateway's `WorkersBackend` (an EmbeddingBackend in its pool, so every sync route,
 *   /api/tags and /v1/models use it as they use a node) LPUSHes the request on
 *   `<prefix>sync:req:<canonical model>` and waits for the answer on its own pub/sub channel
 *   `<prefix>sync:reply:<gateway instance>`, subscribed before the first request;
 * - each worker's `InteractiveResponder` BRPOPs the request lists of the models its nodes
 *   serve and runs each request through its pool's interactive lane (the next free slot on a
 *   node, ahead of every batch chunk), then publishes the vectors (raw float32, base64).
 * A request nobody took within the backend timeout is taken back (LREM) and fails
 * BACKEND_TIMEOUT; a worker's failure comes back as its BackendError code. The models and
 * health the front gateway shows are the live workers' (the worker registry).
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BackendError, ITEM_ERROR_CODES, type ItemErrorCode } from '../backends/errors.js';
import { canonicalModel } from '../backends/modelNames.js';
import type { BackendPool } from '../backends/pool.js';
import type { BackendProbe, EmbeddingBackend, EmbedOptions, EmbedRequest, EmbedResult } from '../backends/types.js';
import type { Logger } from '../logger.js';
import { closeRedis, connectRedis } from './redisClient.js';
import { WorkerRegistry, type WorkerInfo } from './workerRegistry.js';

interface SyncRequest {
  readonly id: string;
  readonly replyTo: string;
  readonly model: string;
  readonly inputs: readonly string[];
  readonly options: EmbedOptions;
}

type SyncReply =
  | { readonly id: string; readonly ok: true; readonly vectors: readonly string[]; readonly truncated?: readonly number[] }
  | { readonly id: string; readonly ok: false; readonly code: string; readonly message: string };

export function requestKey(prefix: string, model: string): string {
  return `${prefix}sync:req:${canonicalModel(model)}`;
}

export interface WorkersBackendOptions {
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly instanceId: string;
  readonly backendTimeoutMs: number;
  /** Calls the pool may keep in flight through the workers. @defaultValue 64 */
  readonly maxConcurrency?: number;
}

/** The front gateway's side: the live workers, seen by the pool as one backend. */
export class WorkersBackend implements EmbeddingBackend {
  readonly id = 'workers (via Redis)';
  readonly kind = 'workers' as const;
  readonly maxConcurrency: number;
  private readonly command: Redis;
  private readonly subscriber: Redis;
  private readonly registry: WorkerRegistry;
  private readonly channel: string;
  private readonly waiting = new Map<string, (reply: SyncReply) => void>();
  private subscribed: Promise<unknown> | undefined;
  private live: WorkerInfo[] = [];

  constructor(private readonly options: WorkersBackendOptions, private readonly log: Logger) {
    this.maxConcurrency = options.maxConcurrency ?? 64;
    this.command = connectRedis(options.redisUrl, 'command', log, 'sync', options.redisPrefix);
    this.subscriber = connectRedis(options.redisUrl, 'worker', log, 'sync-sub', options.redisPrefix);
    this.registry = new WorkerRegistry(this.command, options.redisPrefix);
    this.channel = `${options.redisPrefix}sync:reply:${options.instanceId}`;
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const reply = parseReply(message);
      if (reply) this.waiting.get(reply.id)?.(reply);
      else this.log.warn('sync lane: an answer that is not one was ignored');
    });
  }

  /** The live workers that answer sync requests (refreshed by every probe). */
  workers(): readonly WorkerInfo[] {
    return this.live;
  }

  async probe(): Promise<BackendProbe> {
    try {
      this.subscribed ??= this.subscriber.subscribe(this.channel).catch((error: unknown) => {
        this.subscribed = undefined;
        throw error;
      });
      await this.subscribed;
      this.live = (await this.registry.live()).filter((w) => w.interactive === true);
    } catch (error) {
      return { healthy: false, models: [], error: `Redis unreachable: ${error instanceof Error ? error.message : String(error)}` };
    }
    const healthy = this.live.filter((w) => w.healthy);
    const models = [...new Set(healthy.flatMap((w) => w.modelNames))].sort();
    if (healthy.length === 0) return { healthy: false, models: [], error: this.live.length === 0 ? 'no live worker' : 'no worker has a healthy node' };
    return { healthy: true, models };
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    await (this.subscribed ?? this.probe());
    const id = randomUUID();
    const body: SyncRequest = { id, replyTo: this.channel, model: request.model, inputs: request.inputs, options: request.options };
    const json = JSON.stringify(body);
    const key = requestKey(this.options.redisPrefix, request.model);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const answered = new Promise<SyncReply | 'timeout' | 'aborted'>((resolve) => {
      this.waiting.set(id, resolve);
      timer = setTimeout(() => resolve('timeout'), this.options.backendTimeoutMs);
      onAbort = () => resolve('aborted');
      request.signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await this.command.lpush(key, json).catch((error: unknown) => {
        throw new BackendError('BACKEND_UNAVAILABLE', `cannot reach the workers through Redis: ${error instanceof Error ? error.message : String(error)}`);
      });
      const reply = await answered;
      if (reply === 'timeout' || reply === 'aborted') {
        // Taken back if no worker has taken it yet (so no worker embeds it for nobody).
        await this.command.lrem(key, 1, json).catch(() => 0);
        if (reply === 'aborted') throw new BackendError('CANCELLED', 'the request was aborted');
        throw new BackendError('BACKEND_TIMEOUT', `no worker answered within ${this.options.backendTimeoutMs / 1000} s`);
      }
      if (!reply.ok) throw new BackendError(itemCode(reply.code), reply.message);
      return {
        vectors: reply.vectors.map((b64) => {
          const bytes = Buffer.from(b64, 'base64');
          return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
        }),
        ...(reply.truncated && reply.truncated.length > 0 ? { truncated: reply.truncated } : {}),
      };
    } finally {
      clearTimeout(timer);
      if (onAbort) request.signal?.removeEventListener('abort', onAbort);
      this.waiting.delete(id);
    }
  }

  async close(): Promise<void> {
    for (const resolve of this.waiting.values()) resolve({ id: '', ok: false, code: 'CANCELLED', message: 'gateway stopping' });
    await Promise.all([closeRedis(this.subscriber), closeRedis(this.command)]);
  }
}

export interface InteractiveResponderOptions {
  readonly redisUrl: string;
  readonly redisPrefix: string;
  /** Sync requests worked at once (`--workers`); each waits for the pool's interactive lane. */
  readonly workers: number;
}

/** How long one BRPOP blocks, so a change of served models or a stop is seen within it. */
const BLOCK_SECONDS = 1;

/** The worker's side: takes sync requests for the models its nodes serve and answers them. */
export class InteractiveResponder {
  private blocking: Redis | undefined;
  private command: Redis | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private lastError = '';

  constructor(private readonly pool: BackendPool, private readonly options: InteractiveResponderOptions, private readonly log: Logger) {}

  start(): Promise<void> {
    this.blocking = connectRedis(this.options.redisUrl, 'worker', this.log, 'sync-take', this.options.redisPrefix);
    this.command = connectRedis(this.options.redisUrl, 'command', this.log, 'sync-answer', this.options.redisPrefix);
    this.loop = this.run();
    return Promise.resolve();
  }

  private async run(): Promise<void> {
    const limit = Math.max(1, this.options.workers);
    while (!this.stopping) {
      try {
        if (this.inFlight.size >= limit) {
          await Promise.race(this.inFlight);
          continue;
        }
        const keys = this.pool.servedModels().map((m) => requestKey(this.options.redisPrefix, m));
        if (keys.length === 0) {
          await new Promise((resolve) => setTimeout(resolve, BLOCK_SECONDS * 1000));
          continue;
        }
        const taken = await this.blocking!.brpop(...[...new Set(keys)], BLOCK_SECONDS);
        if (!taken) continue;
        const request = parseRequest(taken[1]);
        if (!request) continue;
        const work = this.answer(request).finally(() => this.inFlight.delete(work));
        this.inFlight.add(work);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        if (message !== this.lastError) this.log.warn({ err: message }, 'sync lane: Redis error (retrying)');
        this.lastError = message;
        if (!this.stopping) await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private async answer(request: SyncRequest): Promise<void> {
    let reply: SyncReply;
    try {
      const lease = await this.pool.acquireInteractive(request.model, this.abort.signal);
      const result = await lease.embed({ model: request.model, inputs: request.inputs, options: request.options, signal: this.abort.signal });
      reply = {
        id: request.id,
        ok: true,
        vectors: result.vectors.map((v) => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')),
        ...(result.truncated ? { truncated: result.truncated } : {}),
      };
    } catch (error) {
      const code = error instanceof BackendError ? error.code : 'BACKEND_UNAVAILABLE';
      reply = { id: request.id, ok: false, code, message: error instanceof Error ? error.message : String(error) };
    }
    await this.command!.publish(request.replyTo, JSON.stringify(reply)).catch((error: unknown) => {
      this.log.warn({ err: error instanceof Error ? error.message : error }, 'sync lane: could not send an answer (the gateway times the request out)');
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    if (this.blocking) this.blocking.disconnect();
    await Promise.allSettled([this.loop, ...this.inFlight]);
    if (this.command) await closeRedis(this.command);
  }
}

function parseRequest(json: string): SyncRequest | undefined {
  try {
    const value = JSON.parse(json) as SyncRequest;
    return typeof value.id === 'string' && typeof value.replyTo === 'string' && Array.isArray(value.inputs) ? value : undefined;
  } catch {
    return undefined;
  }
}

function parseReply(json: string): SyncReply | undefined {
  try {
    const value = JSON.parse(json) as SyncReply;
    return typeof value.id === 'string' && typeof value.ok === 'boolean' ? value : undefined;
  } catch {
    return undefined;
  }
}

function itemCode(code: string): ItemErrorCode {
  return (ITEM_ERROR_CODES as readonly string[]).includes(code) ? (code as ItemErrorCode) : 'BACKEND_UNAVAILABLE';
}
