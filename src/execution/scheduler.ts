/**
 * The scheduler: pull-based and fair. Whenever the pool may have a free slot, it asks the
 * fair queue for the next running job (round-robin) whose model has a node with room,
 * cuts that job's next chunk and runs it on the granted slot, up to `workers` chunks in
 * flight. Before each backend call it re-reads the job's status, so a cancelled job starts
 * no new call; a cancel event aborts the calls already in flight.
 */
import { BackendError, coerceBackendError } from '../backends/errors.js';
import type { BackendPool, Lease } from '../backends/pool.js';
import type { Logger } from '../logger.js';
import type { ChunkObserver } from '../metrics.js';
import { ADMIN_SCOPE, type ChunkOutcome, type JobRecord } from '../jobs/model.js';
import { terminalPatch } from '../jobs/lifecycle.js';
import { finalStatus } from '../jobs/state.js';
import type { JobStore } from '../store/types.js';
import { AbortRegistry } from './abortRegistry.js';
import { ActiveJob, type ChunkRange } from './activeJob.js';
import { FairQueue } from './fairQueue.js';
import type { JobEvents } from './jobEvents.js';
import type { JobScheduler } from './types.js';
import { generationPathOf, runGenerationItem, type GenerationJobType } from './generationItem.js';
import type { GenerationLease } from '../backends/pool.js';
import { isGenerationJob } from '../jobs/model.js';

export interface SchedulerOptions {
  readonly workers: number;
  readonly chunkSize: number;
  readonly chunkRetries: number;
  readonly pendingTimeoutMs: number;
  readonly jobTtlMs: number;
  /** How long `stop()` lets in-flight chunks finish before aborting them. @defaultValue 5000 */
  readonly stopGraceMs?: number;
  /** Told about chunk outcomes (metrics). */
  readonly chunkObserver?: ChunkObserver;
  /** Whole-call timeout of one generation item. @defaultValue 600000 */
  readonly generationTimeoutMs?: number;
}

const RETRY_BASE_MS = 200;
const WATCH_INTERVAL_MS = 1000;

export class Scheduler implements JobScheduler {
  private readonly queue = new FairQueue<ActiveJob>();
  private readonly aborts = new AbortRegistry();
  private readonly inFlightChunks = new Set<Promise<void>>();
  private readonly unsubscribe: (() => void)[] = [];
  private inFlight = 0;
  private stopping = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private readonly starvedSince = new Map<string, number>();
  /** HOOK (generation): jobs of type generate/chat, which take items one at a time on generation slots. */
  private readonly generationJobs = new Map<string, GenerationJobType>();

  constructor(
    private readonly store: JobStore,
    private readonly pool: BackendPool,
    private readonly events: JobEvents,
    private readonly options: SchedulerOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.unsubscribe.push(this.pool.onCapacity(() => this.dispatch()));
    this.unsubscribe.push(this.events.onCancel((id) => this.onCancel(id)));
    this.watchTimer = setInterval(() => void this.watch(), WATCH_INTERVAL_MS);
    this.watchTimer.unref();
  }

  /** Takes an admitted job (pending or running) into the queue. */
  add(job: JobRecord): void {
    if (job.status !== 'pending' && job.status !== 'running') return;
    if (job.status === 'running' && job.completedItems + job.failedItems >= job.totalItems) {
      // Every document was answered at admission (content cache, or a resumed job that had finished).
      void this.finish(job.id);
      return;
    }
    if (isGenerationJob(job.type)) this.generationJobs.set(job.id, job.type);
    this.queue.add(new ActiveJob(job.id, job.model, job.options, job.totalItems, job.status, job.createdAt));
    this.dispatch();
  }

  /** Whether a job for `model` can be served now, must wait for a backend, or names an unknown model. */
  modelAvailability(model: string): 'served' | 'no-backend' | 'unknown-model' {
    if (this.pool.serves(model)) return 'served';
    return this.pool.anyHealthy() ? 'unknown-model' : 'no-backend';
  }

  /** Chunks in flight and jobs queued, for stats. */
  load(): { chunksInFlight: number; queuedJobs: number; workers: number } {
    return { chunksInFlight: this.inFlight, queuedJobs: this.queue.size, workers: this.options.workers };
  }

  private dispatch(): void {
    if (this.stopping) return;
    this.promotePending();
    const now = Date.now();
    while (this.inFlight < this.options.workers) {
      const job = this.queue.pick((j) => !this.generationJobs.has(j.id) && j.status === 'running' && j.hasWork(now) && this.pool.hasRoomFor(j.model));
      if (!job) break;
      const lease = this.pool.tryAcquire(job.model);
      const range = job.takeRange(this.options.chunkSize, now);
      if (!lease || !range) {
        lease?.release();
        break;
      }
      this.launch(job, range, lease);
    }
    this.dispatchGeneration(now);
    this.scheduleWake();
  }

  // ---- HOOK (generation): items of generate/chat jobs, one per call, on generation slots ----
  // Not bounded by `workers` (embedding calls): the pool's generation slots are the bound.

  private dispatchGeneration(now: number): void {
    for (;;) {
      const job = this.queue.pick((j) => {
        const type = this.generationJobs.get(j.id);
        return type !== undefined && j.status === 'running' && j.hasWork(now) && this.generationRoom(j, type);
      });
      if (!job) return;
      const type = this.generationJobs.get(job.id)!;
      const lease = this.pool.tryAcquireGeneration(job.model, generationPathOf(type));
      const range = job.takeRange(1, now);
      if (!lease || !range) {
        lease?.release();
        return;
      }
      this.launchGeneration(job, type, range, lease);
    }
  }

  /** Room for an item; a model served only by nodes that cannot generate fails the job's items instead of waiting forever. */
  private generationRoom(job: ActiveJob, type: GenerationJobType): boolean {
    const path = generationPathOf(type);
    if (this.pool.servesGeneration(job.model, path)) return this.pool.hasGenerationRoomFor(job.model, path);
    if (this.pool.serves(job.model)) {
      // Not from inside the queue's pick: failing the job removes it from the queue.
      queueMicrotask(() => {
        this.failUnservable(job, type).catch((error: unknown) => this.log.error({ job_id: job.id, err: error }, 'failing an unservable generation job failed'));
      });
    }
    return false;
  }

  private async failUnservable(job: ActiveJob, type: GenerationJobType): Promise<void> {
    if (!this.queue.get(job.id)) return;
    this.forget(job.id);
    const docs = await this.store.pendingDocuments(job.id, 0, job.totalItems);
    const error = `Model ${job.model} is served only by backends that cannot ${type} (the embedded model, OpenAI-compatible embedding servers)`;
    await this.store.recordChunk(job.id, { done: [], failed: docs.map((d) => ({ index: d.index, code: 'INPUT_REJECTED' as const, error })) });
    await this.finish(job.id);
  }

  private launchGeneration(job: ActiveJob, type: GenerationJobType, range: ChunkRange, lease: GenerationLease): void {
    job.inFlight++;
    const run = this.runGeneration(job, type, range, lease)
      .catch((error: unknown) => this.log.error({ job_id: job.id, err: error }, 'generation item failed unexpectedly'))
      .finally(() => {
        job.inFlight--;
        this.inFlightChunks.delete(run);
        void this.afterChunk(job);
      });
    this.inFlightChunks.add(run);
  }

  private async runGeneration(job: ActiveJob, type: GenerationJobType, range: ChunkRange, lease: GenerationLease): Promise<void> {
    // The status re-check before the call is pendingDocuments itself: empty unless the job is running.
    const docs = await this.store.pendingDocuments(job.id, range.start, range.end).catch((error: unknown) => {
      lease.release();
      throw error;
    });
    const item = docs[0];
    if (!item) {
      lease.release();
      if ((await this.store.status(job.id)) !== 'running') this.forget(job.id);
      return;
    }
    const call = this.aborts.register(job.id);
    const started = performance.now();
    const outcome = await runGenerationItem(lease, {
      type,
      model: job.model,
      request: item.text,
      signal: call.signal,
      ...(job.options.keepAlive === undefined ? {} : { keepAlive: job.options.keepAlive }),
      ...(this.options.generationTimeoutMs === undefined ? {} : { timeoutMs: this.options.generationTimeoutMs }),
    }).finally(() => call.done());
    if (outcome.ok) {
      const written = await this.store.recordGenerations(job.id, { done: [{ index: item.index, result: outcome.result }], failed: [] });
      if (!written) this.forget(job.id);
      this.options.chunkObserver?.chunkDone?.(1, performance.now() - started);
      return;
    }
    await this.onChunkError(job, range, docs, outcome.error);
  }

  private launch(job: ActiveJob, range: ChunkRange, lease: Lease): void {
    this.inFlight++;
    job.inFlight++;
    const run = this.runChunk(job, range, lease)
      .catch((error: unknown) => this.log.error({ job_id: job.id, err: error }, 'chunk failed unexpectedly'))
      .finally(() => {
        this.inFlight--;
        job.inFlight--;
        this.inFlightChunks.delete(run);
        void this.afterChunk(job);
      });
    this.inFlightChunks.add(run);
  }

  private async runChunk(job: ActiveJob, range: ChunkRange, lease: Lease): Promise<void> {
    let docs: { index: number; text: string }[] = [];
    let called = false;
    try {
      // Re-check before every backend call: a cancel written to the store stops new calls at once.
      if ((await this.store.status(job.id)) !== 'running') return this.forget(job.id);
      docs = await this.store.pendingDocuments(job.id, range.start, range.end);
      if (docs.length === 0) return;
      const call = this.aborts.register(job.id);
      called = true;
      try {
        const started = performance.now();
        const result = await lease.embed({ model: job.model, inputs: docs.map((d) => d.text), options: job.options, signal: call.signal });
        const truncated = new Set(result.truncated ?? []);
        const done = docs.map((d, i) => ({ index: d.index, vector: result.vectors[i]!, truncated: truncated.has(i) }));
        await this.record(job, { done, failed: [] });
        this.options.chunkObserver?.chunkDone?.(docs.length, performance.now() - started);
      } finally {
        call.done();
      }
    } catch (error) {
      await this.onChunkError(job, range, docs, coerceBackendError(error, lease.backendId));
    } finally {
      if (!called) lease.release();
    }
  }

  private async onChunkError(job: ActiveJob, range: ChunkRange, docs: { index: number }[], error: BackendError): Promise<void> {
    if (error.code === 'CANCELLED' || docs.length === 0) return;
    if (error.code === 'INPUT_REJECTED' && docs.length > 1) {
      // Bisect to isolate the documents the backend refuses; the others still succeed.
      const mid = docs[Math.floor(docs.length / 2)]!.index;
      job.requeue({ start: range.start, end: mid, attempt: range.attempt, notBefore: 0 });
      job.requeue({ start: mid, end: range.end, attempt: range.attempt, notBefore: 0 });
      return;
    }
    if (error.code === 'MODEL_NOT_FOUND' && range.attempt < this.options.chunkRetries && this.pool.serves(job.model)) {
      // The node that refused lost the model in the pool until its next probe; another node has it.
      job.requeue({ ...range, attempt: range.attempt + 1, notBefore: 0 });
      return;
    }
    if (error.retryable && range.attempt < this.options.chunkRetries) {
      this.options.chunkObserver?.chunkRetried?.(error.code);
      const delay = RETRY_BASE_MS * 2 ** range.attempt;
      this.log.warn({ job_id: job.id, backend: error.message, attempt: range.attempt + 1 }, `chunk ${range.start}-${range.end} will be retried in ${delay} ms`);
      job.requeue({ ...range, attempt: range.attempt + 1, notBefore: Date.now() + delay });
      return;
    }
    this.log.warn({ job_id: job.id, code: error.code }, `documents ${range.start}-${range.end - 1} failed: ${error.message}`);
    this.options.chunkObserver?.chunkFailed?.(docs.length, error.code);
    await this.record(job, { done: [], failed: docs.map((d) => ({ index: d.index, code: error.code, error: error.message })) });
  }

  private async record(job: ActiveJob, outcome: ChunkOutcome): Promise<void> {
    const written = await this.store.recordChunk(job.id, outcome);
    if (!written) this.forget(job.id);
  }

  private async afterChunk(job: ActiveJob): Promise<void> {
    if (job.isDrained() && this.queue.get(job.id)) await this.finish(job.id);
    this.dispatch();
  }

  /** Ends a running job whose documents are all done or failed. */
  private async finish(jobId: string): Promise<void> {
    this.forget(jobId);
    const job = await this.store.get(ADMIN_SCOPE, jobId);
    if (job?.status !== 'running' || job.completedItems + job.failedItems < job.totalItems) return;
    const status = finalStatus(job.completedItems);
    const finished = await this.store.transition(jobId, status, terminalPatch(Date.now(), this.options.jobTtlMs));
    if (finished) {
      const seconds = ((finished.completedAt ?? 0) - finished.createdAt) / 1000;
      this.log.info({ job_id: jobId, completed: finished.completedItems, failed: finished.failedItems }, `job ${status} in ${seconds.toFixed(2)} s`);
    }
  }

  private forget(jobId: string): void {
    this.queue.remove(jobId);
    this.starvedSince.delete(jobId);
  }

  private onCancel(jobId: string): void {
    this.forget(jobId);
    const aborted = this.aborts.abortJob(jobId, 'job cancelled');
    this.log.info({ job_id: jobId, aborted_calls: aborted }, 'job cancelled');
  }

  /** Pending jobs start as soon as a backend serves their model. */
  private promotePending(): void {
    for (const job of this.queue.all()) {
      if (job.status !== 'pending' || !this.pool.serves(job.model)) continue;
      job.status = 'running';
      void this.store.transition(job.id, 'running', { at: Date.now() }).then((started) => {
        if (!started) return this.forget(job.id);
        this.log.info({ job_id: job.id }, 'backend available: job started');
        this.dispatch();
      });
    }
  }

  /** Fails jobs that found no backend serving their model within the pending timeout. */
  private async watch(): Promise<void> {
    const now = Date.now();
    for (const job of [...this.queue.all()]) {
      if (this.pool.serves(job.model) || !job.hasWork(now)) {
        this.starvedSince.delete(job.id);
        continue;
      }
      const since = job.status === 'pending' ? job.createdAt : (this.starvedSince.get(job.id) ?? now);
      this.starvedSince.set(job.id, since);
      if (now - since >= this.options.pendingTimeoutMs) await this.giveUp(job);
    }
  }

  private async giveUp(job: ActiveJob): Promise<void> {
    const seconds = Math.round(this.options.pendingTimeoutMs / 1000);
    const error = { code: 'BACKEND_UNAVAILABLE' as const, error: `No backend serving model ${job.model} was available for ${seconds} s` };
    this.forget(job.id);
    if (job.status === 'pending') {
      await this.store.transition(job.id, 'failed', terminalPatch(Date.now(), this.options.jobTtlMs, error));
    } else {
      const docs = await this.store.pendingDocuments(job.id, 0, job.totalItems);
      await this.store.recordChunk(job.id, { done: [], failed: docs.map((d) => ({ index: d.index, ...error })) });
      if (job.inFlight === 0) await this.finish(job.id);
    }
    this.log.warn({ job_id: job.id }, error.error);
  }

  /** Wakes the dispatcher when a retry's backoff ends. */
  private scheduleWake(): void {
    if (this.wakeTimer || this.stopping) return;
    const times = this.queue.all().map((j) => j.nextReadyAt()).filter((t): t is number => t !== undefined);
    if (times.length === 0) return;
    const delay = Math.max(0, Math.min(...times) - Date.now());
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = undefined;
      this.dispatch();
    }, delay);
  }

  /** Stops dispatching, lets in-flight chunks finish for a grace period, then aborts them. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.unsubscribe.forEach((off) => off());
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    const settled = Promise.allSettled([...this.inFlightChunks]);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.stopGraceMs ?? 5000)));
    await Promise.race([settled, grace]);
    clearTimeout(timer);
    this.aborts.abortAll('gateway stopping');
    await Promise.allSettled([...this.inFlightChunks]);
  }
}
