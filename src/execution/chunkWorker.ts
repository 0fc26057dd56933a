/**
 * The consumer side of the chunk queue: a BullMQ Worker whose concurrency is this process's
 * `--workers`, running each chunk through the ChunkProcessor on this process's own pool.
 * Used by `sollol worker` and by a gateway with `--workers` > 0.
 *
 * Worker failure: each chunk in progress holds a BullMQ lock of `chunkLockMs`, renewed every
 * half of it. A worker killed with -9 stops renewing; any other worker's stalled check
 * (every quarter of the lock) moves its chunks back to the queue, ahead of other waiting
 * chunks, so they run again within about `1.25 x chunkLockMs` (10 s by default). A chunk
 * that stalls `MAX_STALLS` times (it kills every worker that takes it) or keeps failing on
 * Redis errors is given up: its documents fail, so the job still ends.
 *
 * A chunk that must wait (transient backend failure, no node here for its model) is moved to
 * BullMQ's delayed set with its new attempt count, not slept on while holding a slot.
 */
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { BackendPool } from '../backends/pool.js';
import type { Logger } from '../logger.js';
import type { ChunkObserver } from '../metrics.js';
import type { JobStore } from '../store/types.js';
import { bullPrefix, QUEUE_NAME, type ChunkData } from './bullQueue.js';
import { ChunkProcessor, type StatusDetail } from './chunkProcessor.js';
import { FairClock } from './fairClock.js';
import type { JobEvents } from './jobEvents.js';
import { closeRedis, connectRedis } from './redisClient.js';
import { HEARTBEAT_MS, WorkerRegistry } from './workerRegistry.js';

export interface ChunkWorkerOptions {
  readonly redisUrl: string;
  readonly redisPrefix: string;
  /** Chunks worked at once (`--workers`). */
  readonly concurrency: number;
  readonly chunkRetries: number;
  readonly chunkLockMs: number;
  /** Identifies this process in the worker registry and on the chunks it takes. */
  readonly instanceId: string;
  readonly chunkObserver?: ChunkObserver;
  /** Whether this process also answers sync requests of front gateways (remoteEmbed.ts); published in the registry. */
  readonly interactive?: boolean;
}

/** How long a chunk waits before another try when no node here serves its model. */
const NO_BACKEND_DELAY_MS = 1000;
const MAX_STALLS = 5;
const STATUS_POLL_MS = 1000;
const PREFETCH = 2;
/** How long stop() waits, after aborting the calls, for BullMQ to let go of the chunks. */
const FORCE_CLOSE_MS = 2000;

/** Whether `promise` settled within `ms`. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = await Promise.race([promise.then(() => true), timeout]);
  clearTimeout(timer);
  return settled;
}

export class ChunkWorker {
  private readonly processor: ChunkProcessor;
  private connection: Redis | undefined;
  private worker: Worker<ChunkData> | undefined;
  private registry: WorkerRegistry | undefined;
  private fair: FairClock | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private unsubscribe: (() => void) | undefined;
  private stopping: Promise<void> | undefined;
  private lastError = '';
  private redisFault: string | undefined;

  constructor(
    store: JobStore,
    private readonly pool: BackendPool,
    private readonly events: JobEvents,
    private readonly options: ChunkWorkerOptions,
    private readonly log: Logger,
  ) {
    this.processor = new ChunkProcessor(store, pool, { ...options, maxCalls: options.concurrency }, log);
  }

  get inFlight(): number {
    return this.processor.inFlight;
  }

  /** Registers the heartbeat, then starts taking chunks. */
  async start(): Promise<void> {
    const { options } = this;
    this.connection = connectRedis(options.redisUrl, 'worker', this.log, 'worker', options.redisPrefix);
    this.registry = new WorkerRegistry(this.connection, options.redisPrefix);
    this.fair = new FairClock(this.connection, options.redisPrefix);
    await this.beat();
    this.unsubscribe = this.events.onCancel((jobId) => {
      const aborted = this.processor.abortJob(jobId);
      if (aborted > 0) this.log.info({ job_id: jobId, aborted_calls: aborted }, 'job cancelled: calls aborted');
    });
    this.every(HEARTBEAT_MS, () => this.beat());
    this.every(STATUS_POLL_MS, () => this.processor.checkInFlight());
    this.worker = new Worker<ChunkData>(QUEUE_NAME, (job, token) => this.process(job, token), {
      connection: this.connection,
      prefix: bullPrefix(options.redisPrefix),
      name: options.instanceId,
      // Twice the calls it may make: the next chunks are taken while calls run and wait in the
      // processor for a slot, so a node never idles for the queue's round trips.
      concurrency: options.concurrency * PREFETCH,
      lockDuration: options.chunkLockMs,
      stalledInterval: Math.max(250, Math.round(options.chunkLockMs / 4)),
      maxStalledCount: MAX_STALLS,
      // After a Redis error BullMQ waits this long before fetching again (its default is 15 s).
      runRetryDelay: 1000,
    });
    this.worker.on('error', (error) => this.onError(error));
    this.worker.on('failed', (job, error) => void this.onFailed(job, error));
  }

  /** Why a job whose chunks this worker runs cannot progress now, if it cannot. */
  statusDetail(jobId: string): StatusDetail | undefined {
    return this.processor.statusDetail(jobId);
  }

  private async process(job: Job<ChunkData>, token: string | undefined): Promise<void> {
    // The fair-share clock moves to the virtual start of the chunk taken (fairClock.ts).
    // Not awaited (off the chunk's path); a failed advance only delays the clock to the next chunk's.
    if (job.data.virtual !== undefined) this.fair?.advance(job.data.virtual).catch((error: unknown) => this.onError(error instanceof Error ? error : new Error(String(error))));
    const verdict = await this.processor.run(job.data);
    if (verdict.kind === 'done') return;
    const now = Date.now();
    let data: ChunkData;
    let delayMs: number;
    if (verdict.kind === 'retry') {
      data = { ...job.data, attempt: verdict.attempt, starvedSince: undefined };
      delayMs = verdict.delayMs;
    } else if (verdict.kind === 'wait') {
      // A store fault: the chunk waits as long as it takes (nothing can be recorded meanwhile).
      data = job.data;
      delayMs = verdict.delayMs;
    } else {
      const since = job.data.starvedSince ?? now;
      if (now - since >= job.data.pendingTimeoutMs) {
        const seconds = Math.round(job.data.pendingTimeoutMs / 1000);
        return this.processor.failRange(job.data, 'BACKEND_UNAVAILABLE', `No backend serving the job's model was available for ${seconds} s`);
      }
      data = { ...job.data, starvedSince: since };
      delayMs = NO_BACKEND_DELAY_MS;
    }
    await job.updateData(data);
    await job.moveToDelayed(now + delayMs, token);
    throw new DelayedError();
  }

  /** BullMQ gave up on a chunk (too many stalls or errors): fail its documents so the job ends. */
  private async onFailed(job: Job<ChunkData> | undefined, error: Error): Promise<void> {
    if (!job) return;
    const final = job.attemptsMade >= (job.opts.attempts ?? 1) || error.name === 'UnrecoverableError';
    if (!final) return;
    await this.processor
      .failRange(job.data, 'BACKEND_UNAVAILABLE', `The chunk could not be processed: ${error.message}`)
      .catch((err: unknown) => this.log.error({ job_id: job.data.jobId, err }, 'could not record a failed chunk'));
  }

  private onError(error: Error): void {
    // Once per distinct message: a Redis outage repeats the same error many times a second.
    if (error.message === this.lastError) return;
    this.lastError = error.message;
    this.log.warn({ err: error.message }, 'chunk worker: Redis error (retrying)');
  }

  private async beat(): Promise<void> {
    try {
      await this.registry?.beat({
        id: this.options.instanceId,
        modelNames: this.pool.servedModels(),
        healthy: this.pool.anyHealthy(),
        concurrency: this.options.concurrency,
        nodes: this.pool.snapshot(),
        interactive: this.options.interactive === true,
      });
      this.redisFault = undefined;
    } catch (error) {
      this.redisFault = error instanceof Error ? error.message : String(error);
      throw error;
    }
  }

  /** Degraded while this worker cannot write its heartbeat (Redis unreachable). */
  degradedReasons(): string[] {
    const status = this.connection?.status;
    if (this.redisFault !== undefined || (status !== undefined && status !== 'ready')) {
      return [`Redis unreachable: ${this.redisFault ?? `connection ${status ?? 'down'}`}`];
    }
    return [];
  }

  private every(ms: number, task: () => Promise<void>): void {
    let running = false;
    const timer = setInterval(() => {
      if (running) return;
      running = true;
      task()
        .catch(() => {})
        .finally(() => (running = false));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /**
   * Stops taking chunks, lets those in progress finish for `graceMs`, then aborts their
   * calls: those chunks go back to the queue for another worker. Idempotent.
   */
  stop(graceMs: number): Promise<void> {
    this.stopping ??= this.close(graceMs);
    return this.stopping;
  }

  private async close(graceMs: number): Promise<void> {
    this.timers.forEach(clearInterval);
    this.unsubscribe?.();
    this.processor.beginStop();
    const closed = (this.worker?.close() ?? Promise.resolve()).catch(() => {});
    await within(closed, graceMs);
    this.processor.abortAll('worker stopping');
    // Aborted chunks go back to the queue at once; if Redis is unreachable that cannot happen,
    // and BullMQ's stalled check hands them to another worker once their locks lapse.
    if (!(await within(closed, FORCE_CLOSE_MS))) await within(this.worker!.close(true).catch(() => {}), FORCE_CLOSE_MS);
    await within(this.registry?.remove(this.options.instanceId).catch(() => {}) ?? Promise.resolve(), FORCE_CLOSE_MS);
    if (this.connection) await closeRedis(this.connection);
  }
}
