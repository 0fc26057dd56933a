/**
 * The chunk queue of the distributed mode: one BullMQ job per chunk (a document index range
 * of one sollol job), in one queue under the deployment's key prefix (`<prefix>bull:chunks:*`).
 * A chunk job carries ids and numbers only; vectors go to the store (`recordChunk`), never
 * into BullMQ return values, and BullMQ entries are removed as soon as they finish.
 *
 * Fairness across sollol jobs: BullMQ groups are a Pro feature, so fairness is built from
 * priorities (lower runs first, FIFO within one priority). Chunk k of a job gets the virtual
 * start `base + k`, where `base` is the fair-share clock (fairClock.ts, our own Redis key:
 * the virtual start of the latest chunk a worker took) when the job is enqueued ("start-time
 * fair queuing"), and the priority `virtual - epoch`, rebased before it could reach BullMQ's
 * limit, so it never clamps into FIFO under a backlog that never drains. Each round
 * of priorities then holds one chunk of every job, so workers serve the jobs in turn: a
 * 20-document job submitted behind a 10,000-document one runs on the next free slot, and two
 * big jobs share the workers chunk by chunk. A retried or stalled chunk keeps its priority
 * and so goes before the rest of its job. Every chunk is enqueued at once, so no refill step
 * can be lost with a dying process.
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
import { FairClock, priorityOf } from './fairClock.js';

export const QUEUE_NAME = 'chunks';
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
  /** Its virtual start on the fair-share clock (fairClock.ts); absent on chunks of older versions. */
  readonly virtual?: number;
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
  readonly fair: FairClock;
  private readonly keys: RedisKeys;

  /** `rebaseAt`: priorities that make the fair clock rebase (tests lower it). */
  constructor(private readonly connection: Redis, prefix: string, private readonly rebaseAt?: number) {
    this.keys = new RedisKeys(prefix);
    this.queue = new Queue<ChunkData>(QUEUE_NAME, { connection, prefix: bullPrefix(prefix), streams: { events: { maxLen: EVENTS_MAX_LEN } } });
    this.fair = new FairClock(connection, prefix);
  }

  /** Enqueues every chunk of the job; chunks already queued or in progress are left as they are. */
  async enqueue(plan: ChunkPlan): Promise<number> {
    const chunkSize = Number(await this.connection.eval(PLAN_SCRIPT, 1, this.keys.job(plan.jobId), plan.chunkSize));
    if (!(chunkSize > 0)) return 0; // the job is gone (purged, evicted)
    const chunks = Math.ceil(plan.totalItems / chunkSize);
    // Start-time fair queuing weighted by priority: chunk k of the job starts at base + stride·k.
    const stride = priorityStride(plan.priority);
    const fair = await this.fair.plan(chunks * stride, this.rebaseAt);
    if (fair.rebased) await this.rebase(fair.epoch);
    const jobs = [];
    for (let k = 0, start = 0; start < plan.totalItems; k++, start += chunkSize) {
      const virtual = fair.base + stride * k;
      const data: ChunkData = {
        jobId: plan.jobId,
        start,
        end: Math.min(plan.totalItems, start + chunkSize),
        attempt: 0,
        ttlMs: plan.ttlMs,
        pendingTimeoutMs: plan.pendingTimeoutMs,
        virtual,
      };
      jobs.push({ name: 'chunk', data, opts: { ...CHUNK_OPTIONS, jobId: chunkJobId(plan.jobId, k), priority: priorityOf(virtual, fair.epoch) } });
    }
    // addBulk is one MULTI; keep each one bounded for jobs cut into very many chunks.
    for (let i = 0; i < jobs.length; i += 1000) await this.queue.addBulk(jobs.slice(i, i + 1000));
    // Another enqueue rebased meanwhile: put this job's chunks on the new epoch too.
    const epoch = await this.fair.epoch();
    if (epoch !== fair.epoch) await this.reprioritize(jobs.map((j) => j.opts.jobId), epoch);
    return jobs.length;
  }

  /** Every waiting chunk gets its priority from its virtual start under the new epoch (order kept). */
  private async rebase(epoch: number): Promise<void> {
    const waiting = await this.queue.getJobs(['prioritized', 'delayed', 'waiting'], 0, -1);
    await this.reprioritize(waiting.map((job) => job.id).filter((id): id is string => id !== undefined), epoch);
  }

  private async reprioritize(ids: readonly string[], epoch: number): Promise<void> {
    for (let i = 0; i < ids.length; i += 200) {
      await Promise.all(
        ids.slice(i, i + 200).map(async (id) => {
          const job = await this.queue.getJob(id);
          if (!job || job.data.virtual === undefined) return;
          // A chunk taken by a worker meanwhile refuses the change; it no longer needs one.
          await job.changePriority({ priority: priorityOf(job.data.virtual, epoch) }).catch(() => undefined);
        }),
      );
    }
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
   * Whether any chunk of the job is in the queue in any state (waiting, prioritized, delayed,
   * active, or stalled and about to move back): BullMQ keeps a hash per job, `<bull prefix>:chunks:<chunk id>`,
   * until the chunk finishes (then it is removed). False also when the job was never planned.
   */
  async hasChunks(jobId: string, totalItems: number): Promise<boolean> {
    const chunkSize = Number(await this.connection.hget(this.keys.job(jobId), 'chunkSize'));
    if (!(chunkSize > 0)) return false;
    const chunks = Math.ceil(totalItems / chunkSize);
    const base = `${this.queue.opts.prefix ?? ''}:${QUEUE_NAME}:`;
    // From the last chunk back: a running job's early chunks are the ones already finished (and removed).
    for (let k1 = chunks; k1 > 0; k1 -= 500) {
      const k0 = Math.max(0, k1 - 500);
      const keys = Array.from({ length: k1 - k0 }, (_, i) => base + chunkJobId(jobId, k1 - 1 - i));
      const present = await Promise.all(keys.map((key) => this.connection.exists(key)));
      if (present.some((n) => n > 0)) return true;
    }
    return false;
  }

  /**
   * A job's new priority (PATCH): its chunks still waiting get priorities from the head of the
   * queue on, spaced by the new stride, as if enqueued now; chunks in progress are left alone.
   */
  async changeJobPriority(jobId: string, totalItems: number, priority: Priority): Promise<number> {
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
    const stride = priorityStride(priority);
    const fair = await this.fair.plan(waiting.length * stride, this.rebaseAt);
    if (fair.rebased) await this.rebase(fair.epoch);
    // A chunk taken by a worker meanwhile refuses the change: it is running, which is fine.
    await Promise.all(
      waiting.map(async (chunk, n) => {
        const virtual = fair.base + stride * n;
        await chunk.updateData({ ...chunk.data, virtual });
        await chunk.changePriority({ priority: priorityOf(virtual, fair.epoch) });
      }).map((p) => p.catch(() => undefined)),
    );
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
