/**
 * The chunk queue of the distributed mode: one BullMQ job per chunk (a document index range
 * of one sollol job), in one queue under the deployment's key prefix (`<prefix>bull:chunks:*`).
 * A chunk job carries ids and numbers only; vectors go to the store (`recordChunk`), never
 * into BullMQ return values, and BullMQ entries are removed as soon as they finish.
 *
 * Fairness across sollol jobs: BullMQ groups are a Pro feature, so fairness is built from
 * priorities (lower runs first, FIFO within one priority). Chunk k of a job gets priority
 * `base + k`, where `base` is the priority at the head of the queue when the job is
 * enqueued ("start-time fair queuing": the head's priority is the virtual time). Each round
 * of priorities then holds one chunk of every job, so workers serve the jobs in turn: a
 * 20-document job submitted behind a 10,000-document one runs on the next free slot, and two
 * big jobs share the workers chunk by chunk. A retried or stalled chunk keeps its priority
 * and so goes before the rest of its job. Every chunk is enqueued at once, so no refill step
 * can be lost with a dying process; when the queue drains, virtual time restarts at 0.
 *
 * Chunk job ids are `<job id>-c<k>`, so a re-enqueue (resume) of a chunk still queued or in
 * progress is a no-op (BullMQ keeps the existing job), and a cancel can remove a job's
 * queued chunks by id. For that the cut must not change: the chunk size a job was first
 * enqueued with is kept in the job's own record (field `chunkSize` of `job:<id>`, which expires
 * and is deleted with the job), and every later enqueue or removal uses it, whatever the
 * `--chunk-size` of the gateway doing it.
 */
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { priorityStride, type Priority } from '../jobs/priority.js';
import { RedisKeys } from '../store/redis/keys.js';

export const QUEUE_NAME = 'chunks';
/** BullMQ's highest priority number. */
const PRIORITY_LIMIT = 2 ** 21;
/** BullMQ retries after an unexpected error (e.g. Redis unreachable), backoff 0.5 s doubling: about 8 minutes. */
const INFRA_ATTEMPTS = 10;
/** Events BullMQ keeps in its stream; nothing here reads them, so keep them few. */
const EVENTS_MAX_LEN = 1000;
/** The job's chunk size: set once (HSETNX) while the job exists; never creates the key. */
const PLAN_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], 'chunkSize', ARGV[1])
return redis.call('HGET', KEYS[1], 'chunkSize')`;

export interface ChunkData {
  readonly jobId: string;
  /** Document index range [start, end). */
  readonly start: number;
  readonly end: number;
  /** Backend attempts already made for this range (transient failures are retried after a backoff). */
  readonly attempt: number;
  /** TTL of the job once it finishes, from the gateway that admitted it (the finishing worker sets it). */
  readonly ttlMs: number;
  /** How long the chunk may find no backend serving its model before its documents fail. */
  readonly pendingTimeoutMs: number;
  /** When a worker first found no backend for the model (set while the chunk bounces between workers). */
  readonly starvedSince?: number;
}

/** BullMQ's key prefix under the deployment's prefix, so a SCAN of `<prefix>*` sees everything. */
export function bullPrefix(prefix: string): string {
  return `${prefix}bull`;
}

export function chunkJobId(jobId: string, k: number): string {
  return `${jobId}-c${k}`;
}

export interface ChunkPlan {
  readonly jobId: string;
  readonly totalItems: number;
  readonly chunkSize: number;
  readonly ttlMs: number;
  readonly pendingTimeoutMs: number;
  /** The job's priority: its chunks' priorities are spaced by priorityStride (jobs/priority.ts). */
  readonly priority?: Priority;
}

const CHUNK_OPTIONS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: true,
  attempts: INFRA_ATTEMPTS,
  backoff: { type: 'exponential', delay: 500 },
};

/** The producer side: enqueues and removes chunks, counts what waits. */
export class ChunkQueue {
  readonly queue: Queue<ChunkData>;
  private readonly prioritizedKey: string;
  private readonly keys: RedisKeys;

  constructor(private readonly connection: Redis, prefix: string) {
    this.keys = new RedisKeys(prefix);
    this.queue = new Queue<ChunkData>(QUEUE_NAME, { connection, prefix: bullPrefix(prefix), streams: { events: { maxLen: EVENTS_MAX_LEN } } });
    this.prioritizedKey = `${bullPrefix(prefix)}:${QUEUE_NAME}:prioritized`;
  }

  /** Enqueues every chunk of the job; chunks already queued or in progress are left as they are. */
  async enqueue(plan: ChunkPlan): Promise<number> {
    const chunkSize = Number(await this.connection.eval(PLAN_SCRIPT, 1, this.keys.job(plan.jobId), plan.chunkSize));
    if (!(chunkSize > 0)) return 0; // the job is gone (purged, evicted)
    const base = await this.virtualTime();
    const jobs = [];
    for (let k = 0, start = 0; start < plan.totalItems; k++, start += chunkSize) {
      const data: ChunkData = {
        jobId: plan.jobId,
        start,
        end: Math.min(plan.totalItems, start + chunkSize),
        attempt: 0,
        ttlMs: plan.ttlMs,
        pendingTimeoutMs: plan.pendingTimeoutMs,
      };
      // Weighted: chunk k of a high job at base + k, of a normal one at base + 4k, of a low one at base + 16k.
      const priority = Math.min(PRIORITY_LIMIT, base + priorityStride(plan.priority) * k);
      jobs.push({ name: 'chunk', data, opts: { ...CHUNK_OPTIONS, jobId: chunkJobId(plan.jobId, k), priority } });
    }
    // addBulk is one MULTI; keep each one bounded for jobs cut into very many chunks.
    for (let i = 0; i < jobs.length; i += 1000) await this.queue.addBulk(jobs.slice(i, i + 1000));
    return jobs.length;
  }

  /**
   * The priority at the head of the queue (BullMQ scores a prioritized job
   * `priority * 2^32 + counter`); 1 when nothing waits.
   */
  private async virtualTime(): Promise<number> {
    const head = await this.connection.zrange(this.prioritizedKey, 0, 0, 'WITHSCORES');
    const score = Number(head[1]);
    return Number.isFinite(score) ? Math.max(1, Math.floor(score / 2 ** 32)) : 1;
  }

  /** Removes a job's chunks still waiting (a chunk in progress is locked and stays: its worker skips it). */
  async removeQueued(jobId: string, totalItems: number): Promise<number> {
    const chunkSize = Number(await this.connection.hget(this.keys.job(jobId), 'chunkSize'));
    if (!(chunkSize > 0)) return 0;
    const chunks = Math.ceil(totalItems / chunkSize);
    let removed = 0;
    for (let k0 = 0; k0 < chunks; k0 += 500) {
      const ids = Array.from({ length: Math.min(500, chunks - k0) }, (_, i) => chunkJobId(jobId, k0 + i));
      const results = await Promise.all(ids.map((id) => this.queue.remove(id).catch(() => 0)));
      removed += results.reduce<number>((sum, r) => sum + r, 0);
    }
    return removed;
  }

  /**
   * A job's new priority (PATCH): its chunks still waiting get priorities from the head of the
   * queue on, spaced by the new stride, as if enqueued now; chunks in progress are left alone.
   */
  async reprioritize(jobId: string, totalItems: number, priority: Priority): Promise<number> {
    const chunkSize = Number(await this.connection.hget(this.keys.job(jobId), 'chunkSize'));
    if (!(chunkSize > 0)) return 0;
    const chunks = Math.ceil(totalItems / chunkSize);
    const waiting = [];
    for (let k0 = 0; k0 < chunks; k0 += 500) {
      const found = await Promise.all(Array.from({ length: Math.min(500, chunks - k0) }, async (_, i) => {
        const chunk = await this.queue.getJob(chunkJobId(jobId, k0 + i));
        return chunk && (await chunk.getState()) === 'prioritized' ? chunk : undefined;
      }));
      waiting.push(...found.filter((c) => c !== undefined));
    }
    const base = await this.virtualTime();
    const stride = priorityStride(priority);
    // A chunk taken by a worker meanwhile refuses the change: it is running, which is fine.
    await Promise.all(waiting.map((chunk, n) => chunk.changePriority({ priority: Math.min(PRIORITY_LIMIT, base + stride * n) }).catch(() => undefined)));
    return waiting.length;
  }

  /** Chunks waiting to be worked (waiting, prioritized, delayed for a retry). */
  async waitingChunks(): Promise<number> {
    const counts = await this.queue.getJobCounts('waiting', 'prioritized', 'delayed');
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
