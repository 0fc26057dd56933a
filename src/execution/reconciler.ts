/**
 * The reconciler of the distributed mode: every gateway runs one, every
 * `SOLLOL_RECONCILE_INTERVAL` seconds. It is safe to run on all of them at once because each
 * step is idempotent (a short Redis lock only saves the duplicate work, correctness never
 * depends on it):
 * - a running job with documents still pending and no chunk in the queue in any state (its
 *   gateway died between admission and enqueue, or its chunks were lost with a Redis that
 *   had no persistence) is enqueued again. Chunk job ids are fixed (`<job>-c<k>`), so chunks
 *   still queued are kept as they are, and a re-run of a finished chunk finds no pending
 *   document: nothing is embedded or counted twice (the store records pending documents only);
 * - a running job whose documents are all answered but which is still `running` (a worker
 *   died between recording its last chunk and finishing the job) is finished;
 * - a running job whose model no live worker serves (all its workers died) is failed after
 *   `--pending-timeout`: its remaining documents fail BACKEND_UNAVAILABLE, its queued chunks
 *   leave the queue. The time since the model went unserved is kept in the job's own record
 *   (field `starvedSince` of `job:<id>`, written once with HSETNX), so it survives a change of
 *   the gateway doing the check.
 */
import type { Redis } from 'ioredis';
import { terminalPatch } from '../jobs/lifecycle.js';
import { ADMIN_SCOPE, type JobRecord } from '../jobs/model.js';
import type { Logger } from '../logger.js';
import { RedisKeys } from '../store/redis/keys.js';
import type { JobStore } from '../store/types.js';
import type { ChunkQueue } from './bullQueue.js';
import { finishIfDone } from './finishJob.js';
import type { ModelAvailability } from './types.js';

export interface ReconcilerOptions {
  readonly redisPrefix: string;
  readonly instanceId: string;
  readonly intervalMs: number;
  readonly pendingTimeoutMs: number;
  readonly jobTtlMs: number;
}

const PAGE = 1000;

export class Reconciler {
  private readonly keys: RedisKeys;
  private readonly lockKey: string;

  constructor(
    private readonly redis: Redis,
    private readonly store: JobStore,
    private readonly queue: ChunkQueue,
    /** Whether a live worker serves the model now (the scheduler's registry view). */
    private readonly availability: (model: string) => ModelAvailability,
    /** Enqueues a running job's chunks (the scheduler's own path, with its retries). */
    private readonly enqueue: (job: JobRecord) => Promise<void>,
    private readonly options: ReconcilerOptions,
    private readonly log: Logger,
  ) {
    this.keys = new RedisKeys(options.redisPrefix);
    this.lockKey = `${options.redisPrefix}reconcile:lock`;
  }

  /** One pass; returns how many jobs it enqueued again, finished or failed. */
  async reconcile(now = Date.now()): Promise<number> {
    // Only one gateway per interval does the work; the others skip (and would do no harm).
    const locked = await this.redis.set(this.lockKey, this.options.instanceId, 'PX', Math.max(50, Math.round(this.options.intervalMs * 0.9)), 'NX');
    if (locked === null) return 0;
    const { jobs } = await this.store.list(ADMIN_SCOPE, { limit: PAGE, status: 'running' });
    let acted = 0;
    for (const job of jobs) {
      if (await this.reconcileJob(job, now)) acted++;
    }
    return acted;
  }

  private async reconcileJob(job: JobRecord, now: number): Promise<boolean> {
    if (job.completedItems + job.failedItems >= job.totalItems) {
      return finishIfDone(this.store, job.id, this.options.jobTtlMs, this.log);
    }
    const jobKey = this.keys.job(job.id);
    if (this.availability(job.model) !== 'served') {
      await this.redis.hsetnx(jobKey, 'starvedSince', String(now));
      const since = Number(await this.redis.hget(jobKey, 'starvedSince'));
      if (!(now - since >= this.options.pendingTimeoutMs)) return false;
      const seconds = Math.round(this.options.pendingTimeoutMs / 1000);
      const error = { code: 'BACKEND_UNAVAILABLE' as const, error: `No worker serving model ${job.model} was available for ${seconds} s` };
      const failed = await this.store.transition(job.id, 'failed', terminalPatch(now, this.options.jobTtlMs, error));
      if (!failed) return false;
      this.log.warn({ job_id: job.id, done: job.completedItems, total: job.totalItems }, error.error);
      await this.queue.removeQueued(job.id, job.totalItems);
      return true;
    }
    await this.redis.hdel(jobKey, 'starvedSince');
    // A job admitted a moment ago may be being enqueued right now by its gateway: leave it one interval.
    if (now - (job.startedAt ?? job.createdAt) < this.options.intervalMs) return false;
    if (await this.queue.hasChunks(job.id, job.totalItems)) return false;
    this.log.warn({ job_id: job.id, done: job.completedItems + job.failedItems, total: job.totalItems }, 'running job with no chunk in the queue: enqueued again');
    await this.enqueue(job);
    return true;
  }
}
