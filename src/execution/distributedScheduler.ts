/**
 * The scheduler of the distributed mode (`sollol up --redis`), behind the same port as the
 * embedded one (types.ts). It does not run chunks itself: it puts them on the BullMQ queue
 * (bullQueue.ts), where any `sollol worker`, or this gateway's own ChunkWorker when
 * `--workers` > 0, takes them. What stays here, run by every gateway alike:
 * - admission: whether some live worker serves the model (the worker registry), so a job is
 *   `running`, `pending` (no worker reachable yet) or refused (400 MODEL_NOT_FOUND);
 * - pending jobs: once a worker serves their model, the first gateway to move them to
 *   `running` (the store's guarded transition) enqueues them; past `--pending-timeout` they fail;
 * - resume: at start the job manager hands over every unfinished job; its chunks are
 *   enqueued again, and BullMQ keeps the ones still queued or in progress (same job ids),
 *   while a re-run of an already finished chunk finds no pending document and ends at once;
 * - cancel: the chunks of a cancelled job still waiting are removed from the queue.
 */
import type { Redis } from 'ioredis';
import { canonicalModel } from '../backends/modelNames.js';
import type { BackendPool } from '../backends/pool.js';
import { ADMIN_SCOPE, type JobRecord } from '../jobs/model.js';
import { terminalPatch } from '../jobs/lifecycle.js';
import type { Priority } from '../jobs/priority.js';
import type { Logger } from '../logger.js';
import type { ChunkObserver } from '../metrics.js';
import type { JobStore } from '../store/types.js';
import { ChunkQueue } from './bullQueue.js';
import { ChunkWorker } from './chunkWorker.js';
import { finishIfDone } from './finishJob.js';
import type { JobEvents } from './jobEvents.js';
import { Reconciler } from './reconciler.js';
import { closeRedis, connectRedis } from './redisClient.js';
import type { JobScheduler, ModelAvailability, RemoteWorkerView, SchedulerLoad } from './types.js';
import { WorkerRegistry, type WorkerInfo } from './workerRegistry.js';

export interface DistributedSchedulerOptions {
  readonly redisUrl: string;
  readonly redisPrefix: string;
  /** Chunks this gateway works itself; 0 = none (only `sollol worker`s do). */
  readonly workers: number;
  readonly chunkSize: number;
  readonly chunkRetries: number;
  readonly chunkLockMs: number;
  readonly pendingTimeoutMs: number;
  readonly jobTtlMs: number;
  readonly instanceId: string;
  /** How long `stop()` lets chunks in progress finish. @defaultValue 5000 */
  readonly stopGraceMs?: number;
  readonly chunkObserver?: ChunkObserver;
  /** How often the reconciler looks for stranded running jobs (reconciler.ts). @defaultValue 5000 */
  readonly reconcileIntervalMs?: number;
  /** A job's priority when the record handed to `add` does not carry it (a pending job started by watch()). */
  readonly priorityOf?: (jobId: string) => Promise<Priority | undefined>;
}

/**
 * Test-only hook (documented in the README's distributed section): with
 * `SOLLOL_TEST_CRASH_AFTER_ADMIT=1` the gateway kills itself with SIGKILL right after a job
 * was admitted and before its chunks are enqueued, the window the reconciler covers.
 */
const CRASH_AFTER_ADMIT = process.env.SOLLOL_TEST_CRASH_AFTER_ADMIT === '1';

const WATCH_INTERVAL_MS = 1000;
const PENDING_PAGE = 1000;
/** About a minute of retries; after that a gateway restart (resume) enqueues the job again. */
const ENQUEUE_ATTEMPTS = 60;
const ENQUEUE_RETRY_MS = 1000;

export class DistributedScheduler implements JobScheduler {
  private connection: Redis | undefined;
  private queue: ChunkQueue | undefined;
  private registry: WorkerRegistry | undefined;
  private readonly worker: ChunkWorker | undefined;
  private liveWorkers: WorkerInfo[] = [];
  private waitingChunks = 0;
  private watchTimer: NodeJS.Timeout | undefined;
  private watching: Promise<void> | undefined;
  private reconciler: Reconciler | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly background = new Set<Promise<unknown>>();
  private stopping: Promise<void> | undefined;
  /** The last failure to reach Redis from the watch loop; cleared by the next success. */
  private redisFault: string | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly pool: BackendPool,
    private readonly events: JobEvents,
    private readonly options: DistributedSchedulerOptions,
    private readonly log: Logger,
  ) {
    if (options.workers > 0) {
      this.worker = new ChunkWorker(store, pool, events, { ...options, concurrency: options.workers }, log);
    }
  }

  async start(): Promise<void> {
    this.connection = connectRedis(this.options.redisUrl, 'command', this.log, 'queue', this.options.redisPrefix);
    this.queue = new ChunkQueue(this.connection, this.options.redisPrefix);
    this.registry = new WorkerRegistry(this.connection, this.options.redisPrefix);
    await this.worker?.start();
    this.unsubscribe = this.events.onCancel((jobId) => this.track(this.dropQueued(jobId)));
    await this.refresh();
    this.watchTimer = setInterval(() => {
      this.watching ??= this.watch().finally(() => (this.watching = undefined));
    }, WATCH_INTERVAL_MS);
    this.watchTimer.unref();
    const intervalMs = this.options.reconcileIntervalMs ?? 5000;
    this.reconciler = new Reconciler(
      this.connection,
      this.store,
      this.queue,
      (model) => this.modelAvailability(model),
      (job) => this.enqueue(job),
      { ...this.options, intervalMs },
      this.log,
    );
    this.reconcileTimer = setInterval(() => {
      this.reconciling ??= this.reconcile().finally(() => (this.reconciling = undefined));
    }, intervalMs);
    this.reconcileTimer.unref();
  }

  private async reconcile(): Promise<void> {
    try {
      await this.reconciler?.reconcile();
    } catch (error) {
      this.log.warn({ err: error instanceof Error ? error.message : error }, 'reconciler: pass failed; retrying at the next interval');
    }
  }

  add(job: JobRecord): void {
    if (job.status !== 'running') return; // pending jobs are started by watch()
    if (job.completedItems + job.failedItems >= job.totalItems) {
      // Every document was answered at admission (content cache), or a resumed job had finished.
      this.track(finishIfDone(this.store, job.id, this.options.jobTtlMs, this.log));
      return;
    }
    if (CRASH_AFTER_ADMIT) process.kill(process.pid, 'SIGKILL');
    this.track(this.enqueue(job));
  }

  /** Enqueues the job's chunks, retrying while Redis is unreachable (a brief outage must not strand a job). */
  private async enqueue(job: JobRecord): Promise<void> {
    const { chunkSize, jobTtlMs, pendingTimeoutMs } = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        const priority = job.priority ?? (await this.options.priorityOf?.(job.id));
        await this.queue!.enqueue({ jobId: job.id, totalItems: job.totalItems, chunkSize, ttlMs: jobTtlMs, pendingTimeoutMs, ...(priority ? { priority } : {}) });
        return;
      } catch (error) {
        if (this.stopping || attempt >= ENQUEUE_ATTEMPTS) throw error;
        this.log.warn({ job_id: job.id, attempt, err: error instanceof Error ? error.message : error }, 'could not enqueue the job\'s chunks; retrying');
        await new Promise((resolve) => setTimeout(resolve, ENQUEUE_RETRY_MS));
      }
    }
  }

  modelAvailability(model: string): ModelAvailability {
    const local = this.worker !== undefined;
    if (local && this.pool.serves(model)) return 'served';
    const canonical = canonicalModel(model);
    if (this.liveWorkers.some((w) => w.models.includes(canonical))) return 'served';
    // A local node that served the model is down: wait for it (BackendPool.availability).
    if (local && this.pool.anyHealthy() && this.pool.availability(model) === 'no-backend') return 'no-backend';
    const reachable = (local && this.pool.anyHealthy()) || this.liveWorkers.some((w) => w.healthy);
    return reachable ? 'unknown-model' : 'no-backend';
  }

  /** Models the live workers serve (for MODEL_NOT_FOUND messages). */
  servedModels(): string[] {
    const names = new Set<string>(this.worker ? this.pool.servedModels() : []);
    for (const w of this.liveWorkers) w.modelNames.forEach((m) => names.add(m));
    return [...names].sort();
  }

  remoteWorkers(): RemoteWorkerView[] {
    return this.liveWorkers.map((w) => ({
      id: w.id,
      healthy: w.healthy,
      concurrency: w.concurrency,
      models: w.modelNames,
      interactive: w.interactive === true,
      nodes: w.nodes ?? [],
    }));
  }

  /** Pending jobs seen by the last watch wait for a worker serving their model. */
  private pendingSeen = new Map<string, number>();

  statusDetail(jobId: string): { reason: string; message: string; since: number } | undefined {
    const since = this.pendingSeen.get(jobId);
    if (since === undefined) return this.worker?.statusDetail(jobId);
    return { reason: 'no_backend', message: 'No reachable worker serves the job\'s model; the job starts as soon as one does', since };
  }

  load(): SchedulerLoad {
    return { chunksInFlight: this.worker?.inFlight ?? 0, queuedJobs: this.waitingChunks, workers: this.options.workers };
  }

  private async watch(): Promise<void> {
    try {
      await this.refresh();
      this.redisFault = undefined;
      await this.startPendingJobs();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.redisFault === undefined) this.log.warn({ err: message }, 'distributed scheduler: Redis unavailable, retrying');
      this.redisFault = message;
    }
  }

  /** Degraded while Redis cannot be reached (the connection is down, or commands time out). */
  degradedReasons(): string[] {
    const status = this.connection?.status;
    if (this.redisFault !== undefined || (status !== undefined && status !== 'ready')) {
      return [`Redis unreachable: ${this.redisFault ?? `connection ${status ?? 'down'}`}`];
    }
    return [];
  }

  private async refresh(): Promise<void> {
    const [live, waiting] = await Promise.all([this.registry!.live(), this.queue!.waitingChunks()]);
    this.liveWorkers = live;
    this.waitingChunks = waiting;
  }

  /** Pending jobs start once a worker serves their model; past the pending timeout they fail. */
  private async startPendingJobs(): Promise<void> {
    const { jobs } = await this.store.list(ADMIN_SCOPE, { limit: PENDING_PAGE, status: 'pending' });
    const now = Date.now();
    this.pendingSeen = new Map(jobs.map((j) => [j.id, j.createdAt]));
    for (const job of jobs) {
      const availability = this.modelAvailability(job.model);
      if (availability === 'unknown-model') {
        // Workers are reachable and none lists the model (a misspelt name): no use waiting.
        const error = { code: 'MODEL_NOT_FOUND' as const, error: `Model '${job.model}' is not served by any reachable backend. Served models: ${this.servedModels().join(', ') || 'none'}` };
        if (await this.store.transition(job.id, 'failed', terminalPatch(now, this.options.jobTtlMs, error))) this.log.warn({ job_id: job.id }, error.error);
      } else if (availability === 'served') {
        const started = await this.store.transition(job.id, 'running', { at: now });
        if (!started) continue; // another gateway started (or a client cancelled) it first
        this.log.info({ job_id: job.id }, 'backend available: job started');
        this.add(started);
      } else if (now - job.createdAt >= this.options.pendingTimeoutMs) {
        const seconds = Math.round(this.options.pendingTimeoutMs / 1000);
        const error = { code: 'BACKEND_UNAVAILABLE' as const, error: `No backend serving model ${job.model} was available for ${seconds} s` };
        if (await this.store.transition(job.id, 'failed', terminalPatch(now, this.options.jobTtlMs, error))) this.log.warn({ job_id: job.id }, error.error);
      }
    }
  }

  /** PATCH priority: the job's chunks still queued move to the new priority's places (bullQueue.ts). */
  setPriority(id: string, priority: Priority): void {
    this.track((async () => {
      const job = await this.store.get(ADMIN_SCOPE, id);
      if (!job || !this.queue || job.status !== 'running') return;
      const moved = await this.queue.changeJobPriority(id, job.totalItems, priority);
      this.log.debug({ job_id: id, priority, moved }, 'queued chunks reprioritized');
    })());
  }

  /** A cancelled job's chunks still waiting leave the queue (workers skip any that remain). */
  private async dropQueued(jobId: string): Promise<void> {
    const job = await this.store.get(ADMIN_SCOPE, jobId);
    if (!job || !this.queue) return;
    const removed = await this.queue.removeQueued(jobId, job.totalItems);
    if (removed > 0) this.log.debug({ job_id: jobId, removed }, 'queued chunks of a cancelled job removed');
  }

  /** Background work is tracked, logged on failure, and awaited by stop(). */
  private track(work: Promise<unknown>): void {
    const tracked = work
      .catch((error: unknown) => this.log.error({ err: error }, 'distributed scheduler: background task failed'))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  stop(): Promise<void> {
    this.stopping ??= this.close();
    return this.stopping;
  }

  private async close(): Promise<void> {
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    this.unsubscribe?.();
    await this.worker?.stop(this.options.stopGraceMs ?? 5000);
    // Bounded: during a Redis outage a background write may wait for a reconnect that never comes.
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.stopGraceMs ?? 5000)));
    await Promise.race([Promise.allSettled([this.watching, this.reconciling, ...this.background]), grace]);
    clearTimeout(timer);
    await this.queue?.close();
    if (this.connection) await closeRedis(this.connection);
  }
}
