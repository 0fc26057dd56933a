/**
 * Works one chunk of the distributed mode, whichever process took it from the queue: get a
 * slot from this process's own pool (at most `--workers` calls at once), read the range's
 * pending documents (which is also the status check), call the node, write vectors (or
 * per-item failures) to the store, and end the job when its last document is in. The same
 * rules as the embedded scheduler:
 * - the status is re-read before every backend call, so a cancelled job starts no new call;
 *   a cancel event aborts the calls in flight, and the status of every job with a call in
 *   flight is also polled each second, for a cancel whose pub/sub message was missed;
 * - a document the backend refuses (INPUT_REJECTED) is isolated by bisecting the range;
 * - a transient failure retries the range after a backoff (up to `chunkRetries`), then its
 *   documents fail with the item code.
 * Delivery is at least once (a dead worker's chunk runs again elsewhere): `pendingDocuments`
 * skips what is already done and `recordChunk` only counts documents still pending, so every
 * document is counted once.
 */
import { EventEmitter } from 'node:events';
import { BackendError, coerceBackendError } from '../backends/errors.js';
import type { ItemErrorCode } from '../backends/errors.js';
import type { BackendPool, Lease } from '../backends/pool.js';
import type { EmbedOptions } from '../backends/types.js';
import { ADMIN_SCOPE, type ChunkOutcome } from '../jobs/model.js';
import type { Logger } from '../logger.js';
import type { ChunkObserver } from '../metrics.js';
import type { JobStore } from '../store/types.js';
import { AbortRegistry } from './abortRegistry.js';
import type { ChunkData } from './bullQueue.js';
import { finishIfDone } from './finishJob.js';
import { runGenerationRange, type GenerationRangeContext } from './generationChunk.js';
import { isGenerationJob, type JobType } from '../jobs/model.js';

export type ChunkVerdict =
  | { readonly kind: 'done' }
  /** Run the range again after `delayMs`, as backend attempt `attempt`. */
  | { readonly kind: 'retry'; readonly attempt: number; readonly delayMs: number }
  /** No node of this process serves the model now: another worker, or later. */
  | { readonly kind: 'no-backend' };

export interface ChunkProcessorOptions {
  /** Most backend calls in flight from this process (`--workers`). */
  readonly maxCalls: number;
  readonly chunkRetries: number;
  readonly chunkObserver?: ChunkObserver;
  /** Whole-call timeout of one generation item. @defaultValue 600000 */
  readonly generationTimeoutMs?: number;
}

type Doc = { index: number; text: string };
type JobMeta = { model: string; options: EmbedOptions; type: JobType };

const DONE: ChunkVerdict = Object.freeze({ kind: 'done' });
const RETRY_BASE_MS = 200;
/** Longest wait for a slot before re-checking the status and the pool. */
const SLOT_WAIT_MS = 1000;
const META_CACHE = 1000;

export class ChunkProcessor {
  private readonly aborts = new AbortRegistry();
  /** Calls in flight per job, for the status poll. */
  private readonly calling = new Map<string, number>();
  /** Model and options per job: they never change, so they are read once. */
  private readonly meta = new Map<string, JobMeta>();
  /** Leases held (calls in flight, or about to start): at most `maxCalls`. */
  private leased = 0;
  private readonly slotFreed = new EventEmitter().setMaxListeners(0);
  private stopping = false;

  constructor(
    private readonly store: JobStore,
    private readonly pool: BackendPool,
    private readonly options: ChunkProcessorOptions,
    private readonly log: Logger,
  ) {}

  /** Backend calls in flight (or about to start) now: at most `maxCalls`. */
  get inFlight(): number {
    return this.leased;
  }

  async run(data: ChunkData): Promise<ChunkVerdict> {
    const { jobId } = data;
    const job = await this.jobMeta(jobId);
    if (!job) return DONE;
    // HOOK (generation): generate/chat items run one per call on generation slots (generationChunk.ts).
    if (isGenerationJob(job.type)) return runGenerationRange(this.generationContext(), data, { model: job.model, type: job.type, options: job.options });
    const groups: Doc[][] = [];
    let first = true;
    while (first || groups.length > 0) {
      const lease = await this.acquire(job.model);
      if (lease === 'stopping') return { kind: 'retry', attempt: data.attempt, delayMs: 0 };
      if (lease === 'no-backend') return (await this.store.status(jobId)) === 'running' ? { kind: 'no-backend' } : DONE;
      // Re-check before every backend call: a cancel written to the store stops new calls. The
      // first read is pendingDocuments itself (empty unless the job is running), made once the
      // slot is ours so that a chunk waiting for a slot never works from a stale read.
      const group = await this.nextGroup(jobId, data, first, groups).catch((error: unknown) => {
        this.giveBack(lease);
        throw error;
      });
      first = false;
      if (!group) {
        this.giveBack(lease);
        break;
      }
      const outcome = await this.call(jobId, job, group, lease);
      if (!(outcome instanceof BackendError)) {
        if (!(await this.store.recordChunk(jobId, outcome.vectors))) return DONE;
        this.options.chunkObserver?.chunkDone?.(group.length, outcome.ms);
        continue;
      }
      const next = this.afterError(data, job, group, outcome, groups);
      if (next === 'recorded') {
        if (!(await this.recordFailed(jobId, group, outcome.code, outcome.message))) return DONE;
      } else if (next !== 'split') {
        return next;
      }
    }
    await finishIfDone(this.store, jobId, data.ttlMs, this.log);
    return DONE;
  }

  /** The documents of the next call: the range's pending ones first, then halves of a bisected group. */
  private async nextGroup(jobId: string, data: ChunkData, first: boolean, groups: Doc[][]): Promise<Doc[] | undefined> {
    if (first) {
      const docs = await this.store.pendingDocuments(jobId, data.start, data.end);
      return docs.length > 0 ? docs : undefined;
    }
    if ((await this.store.status(jobId)) !== 'running') return undefined;
    return groups.pop();
  }

  /** A slot granted but not used. */
  private giveBack(lease: Lease): void {
    lease.release();
    this.freeSlot();
  }

  /** What a failed call leads to: split the group, retry the range later, or record the failure. */
  private afterError(data: ChunkData, job: JobMeta, group: Doc[], error: BackendError, groups: Doc[][]): ChunkVerdict | 'split' | 'recorded' {
    if (error.code === 'CANCELLED') {
      // Aborted: by a cancel (drop the chunk), or because this process stops (another takes it).
      return this.stopping ? { kind: 'retry', attempt: data.attempt, delayMs: 0 } : DONE;
    }
    if (error.code === 'INPUT_REJECTED' && group.length > 1) {
      const mid = Math.floor(group.length / 2);
      groups.push(group.slice(mid), group.slice(0, mid));
      return 'split';
    }
    const retriesLeft = data.attempt < this.options.chunkRetries;
    if (error.code === 'MODEL_NOT_FOUND' && retriesLeft && this.pool.serves(job.model)) {
      // The node that refused lost the model in the pool until its next probe; another node has it.
      return { kind: 'retry', attempt: data.attempt + 1, delayMs: 0 };
    }
    if (error.retryable && retriesLeft) {
      this.options.chunkObserver?.chunkRetried?.(error.code);
      const delayMs = RETRY_BASE_MS * 2 ** data.attempt;
      this.log.warn({ job_id: data.jobId, backend: error.message, attempt: data.attempt + 1 }, `chunk ${data.start}-${data.end} will be retried in ${delayMs} ms`);
      return { kind: 'retry', attempt: data.attempt + 1, delayMs };
    }
    this.log.warn({ job_id: data.jobId, code: error.code }, `${group.length} documents of ${data.start}-${data.end - 1} failed: ${error.message}`);
    this.options.chunkObserver?.chunkFailed?.(group.length, error.code);
    return 'recorded';
  }

  /** One backend call for the group: its vectors as a chunk outcome, or the normalised error. */
  private async call(jobId: string, job: JobMeta, group: Doc[], lease: Lease): Promise<{ vectors: ChunkOutcome; ms: number } | BackendError> {
    const call = this.aborts.register(jobId);
    this.calling.set(jobId, (this.calling.get(jobId) ?? 0) + 1);
    const started = performance.now();
    try {
      const result = await lease.embed({ model: job.model, inputs: group.map((d) => d.text), options: job.options, signal: call.signal });
      const truncated = new Set(result.truncated ?? []);
      const done = group.map((d, i) => ({ index: d.index, vector: result.vectors[i]!, truncated: truncated.has(i) }));
      return { vectors: { done, failed: [] }, ms: performance.now() - started };
    } catch (error) {
      return coerceBackendError(error, lease.backendId);
    } finally {
      call.done();
      this.freeSlot();
      const left = (this.calling.get(jobId) ?? 1) - 1;
      if (left > 0) this.calling.set(jobId, left);
      else this.calling.delete(jobId);
    }
  }

  private recordFailed(jobId: string, docs: readonly { index: number }[], code: ItemErrorCode, error: string): Promise<boolean> {
    return this.store.recordChunk(jobId, { done: [], failed: docs.map((d) => ({ index: d.index, code, error })) });
  }

  /**
   * Fails the range's pending documents with `code` and ends the job if that was the last of
   * them: for a chunk no worker could serve within the pending timeout, or one BullMQ gave up on.
   */
  async failRange(data: ChunkData, code: ItemErrorCode, error: string): Promise<void> {
    const docs = await this.store.pendingDocuments(data.jobId, data.start, data.end);
    if (docs.length > 0) await this.recordFailed(data.jobId, docs, code, error);
    this.log.warn({ job_id: data.jobId, code }, `documents ${data.start}-${data.end - 1} failed: ${error}`);
    await finishIfDone(this.store, data.jobId, data.ttlMs, this.log);
  }

  /**
   * A slot on a node serving the model, within this process's `maxCalls`; waits while none is
   * free. (The queue hands this process more chunks than calls it may make, so the next chunk
   * is read and ready the moment a slot frees, as in the embedded scheduler.)
   */
  private async acquire(model: string): Promise<Lease | 'no-backend' | 'stopping'> {
    for (;;) {
      if (this.stopping) return 'stopping';
      if (!this.pool.serves(model)) return 'no-backend';
      const lease = this.leased < this.options.maxCalls ? this.pool.tryAcquire(model) : undefined;
      if (lease) {
        this.leased++;
        return lease;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, SLOT_WAIT_MS);
        const off = this.pool.onCapacity(done);
        this.slotFreed.once('free', done);
        const slotFreed = this.slotFreed;
        function done(): void {
          clearTimeout(timer);
          off();
          slotFreed.off('free', done);
          resolve();
        }
      });
    }
  }

  private freeSlot(): void {
    this.leased--;
    this.slotFreed.emit('free');
  }

  private async jobMeta(jobId: string): Promise<JobMeta | undefined> {
    const known = this.meta.get(jobId);
    if (known) return known;
    const job = await this.store.get(ADMIN_SCOPE, jobId);
    if (!job) return undefined;
    if (this.meta.size >= META_CACHE) this.meta.delete(this.meta.keys().next().value!);
    const meta = { model: job.model, options: job.options, type: job.type };
    this.meta.set(jobId, meta);
    return meta;
  }

  /** HOOK (generation): what a generation range needs from this processor (its aborts and the status poll's call count). */
  private generationContext(): GenerationRangeContext {
    return {
      store: this.store,
      pool: this.pool,
      log: this.log,
      chunkRetries: this.options.chunkRetries,
      ...(this.options.generationTimeoutMs === undefined ? {} : { generationTimeoutMs: this.options.generationTimeoutMs }),
      stopping: () => this.stopping,
      startCall: (jobId) => {
        const call = this.aborts.register(jobId);
        this.calling.set(jobId, (this.calling.get(jobId) ?? 0) + 1);
        return {
          signal: call.signal,
          done: () => {
            call.done();
            const left = (this.calling.get(jobId) ?? 1) - 1;
            if (left > 0) this.calling.set(jobId, left);
            else this.calling.delete(jobId);
          },
        };
      },
    };
  }

  /** A cancel event: abort the job's calls in flight here. */
  abortJob(jobId: string): number {
    this.meta.delete(jobId);
    return this.aborts.abortJob(jobId, 'job cancelled');
  }

  /** The safety net for a missed cancel event: aborts calls of jobs that are no longer running. */
  async checkInFlight(): Promise<void> {
    for (const jobId of [...this.calling.keys()]) {
      const status = await this.store.status(jobId);
      if (status !== 'running') {
        const aborted = this.abortJob(jobId);
        if (aborted > 0) this.log.info({ job_id: jobId, aborted_calls: aborted, status }, 'job no longer running: calls aborted');
      }
    }
  }

  /** From now on chunks go back to the queue instead of starting calls. */
  beginStop(): void {
    this.stopping = true;
  }

  /** Aborts every call in flight (after the stop grace): their chunks go back to the queue. */
  abortAll(reason: string): void {
    this.stopping = true;
    this.aborts.abortAll(reason);
  }
}
