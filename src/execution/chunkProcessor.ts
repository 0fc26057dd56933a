/**
 * The one chunk pipeline (docs/ARCHITECTURE.md, "Chunk pipeline"), driven by both schedulers:
 * the embedded one (scheduler.ts: its fair queue grants a slot, then calls `step`) and the
 * distributed one (chunkWorker.ts: `run` takes a chunk from BullMQ, gets slots itself and calls
 * `step` for the chunk and its bisected parts). Every rule of a chunk's work is here, once:
 *
 * - the status is re-checked before every backend call (`pendingDocuments` is empty unless the
 *   job is running), so a cancelled job starts no new call; a cancel aborts calls in flight;
 * - one call on a lease becomes a {@link CallOutcome} in {@link ChunkProcessor.callOnLease}:
 *   an embedding call for a chunk's documents (the pool has validated the vectors,
 *   vectorCheck.ts), or, for a generate/chat job, one item on a generation slot
 *   (generationItem.ts); everything around the call is the same for both;
 * - a node-level failure (timeout, connection, 429/503) retries after a backoff, up to
 *   `chunkRetries`, then fails the documents with its code;
 * - a failure that may be the documents' (a 4xx, another 5xx, INVALID_VECTOR) is retried once
 *   (on another node when one serves the model), then bisected until the failing documents
 *   are isolated; a single document is tried on every node serving the model before it fails.
 *   A node whose circuit is open fails every call: its work moves to another node serving
 *   the model, nothing is bisected;
 * - a store fault (StoreError, or anything the store throws) is never a backend's: it charges
 *   no node and fails no document; the task waits and runs again after a backoff.
 * - a duplicate call (a hedge at a job's tail, see chunkSizing.ts) records what it gets like
 *   any call, but its failure decides nothing (`lost`): the original call's outcome, through
 *   the rules above, is the documents' fate, so a failing chunk is retried and bisected once.
 * Generation items are one per task (a range of one item), on generation slots: the embedded
 * scheduler cuts them so; `run` (distributed) gives each pending item of its range its own
 * slot and steps them side by side.
 * Delivery is at least once (a dead worker's chunk runs again elsewhere): `pendingDocuments`
 * skips what is done and `recordChunk` only counts documents still pending, so every document
 * is counted once.
 */
import { EventEmitter } from 'node:events';
import { BackendError, coerceBackendError } from '../backends/errors.js';
import type { ItemErrorCode } from '../backends/errors.js';
import type { BackendPool, GenerationLease, Lease } from '../backends/pool.js';
import type { EmbedOptions } from '../backends/types.js';
import { ADMIN_SCOPE, isGenerationJob, type ChunkOutcome, type GenerationOutcome, type JobType } from '../jobs/model.js';
import type { Logger } from '../logger.js';
import type { ChunkObserver } from '../metrics.js';
import { isStoreError } from '../store/errors.js';
import type { JobStore } from '../store/types.js';
import { AbortRegistry } from './abortRegistry.js';
import type { ChunkData } from './bullQueue.js';
import { finishIfDone } from './finishJob.js';
import { generationPathOf, runGenerationItem } from './generationItem.js';

/** One piece of a job's work: the pending documents of [start, end). */
export interface ChunkTask {
  readonly jobId: string;
  readonly start: number;
  readonly end: number;
  /** Failed calls already made for these documents. */
  readonly attempt: number;
  /** Nodes that failed these documents in a way that may be the documents' fault: tried last. */
  readonly avoid?: readonly string[];
}

/** Why a job cannot progress now (`status_detail` in its status). */
export type WaitReason = 'store_full' | 'store_unavailable' | 'no_backend';

export interface StatusDetail {
  readonly reason: WaitReason;
  readonly message: string;
  /** Epoch ms of when the job started waiting for this reason. */
  readonly since: number;
}

/** What became of one step (one call, or none) of a task. */
export type StepResult =
  /** Nothing more to do for the task: its outcome is recorded, or the job is no longer running. */
  | { readonly kind: 'done' }
  /** Bisected: both parts are to be run (the first part first). */
  | { readonly kind: 'split'; readonly parts: readonly [ChunkTask, ChunkTask] }
  /** Run `task` again after `delayMs`. */
  | { readonly kind: 'retry'; readonly task: ChunkTask; readonly delayMs: number }
  /** The job cannot progress now (store fault, failing node): run `task` again after `delayMs`. */
  | { readonly kind: 'wait'; readonly task: ChunkTask; readonly delayMs: number; readonly reason: WaitReason; readonly message: string }
  /** A duplicate call ({@link StepCall.duplicate}) failed: nothing recorded, the original call decides. */
  | { readonly kind: 'lost' };

/** How `step` makes its call, beyond the lease. */
export interface StepCall {
  /** Aborts this call alone (a job's cancel aborts every call of the job anyway). */
  readonly signal?: AbortSignal;
  /**
   * The call duplicates one in flight elsewhere (a hedge, chunkSizing.ts): its vectors are
   * recorded like any (the store counts a document once, while it is pending), but its failure
   * is nobody's: no retry, no bisection, no document failed (the result is `lost`). The lease
   * should be a duplicate one too, so the node is not charged either (pool.ts LeaseUse).
   */
  readonly duplicate?: boolean;
  /** Called once the call answered with a result, before it is recorded. */
  readonly onAnswer?: () => void;
  /**
   * The task's documents, taken from the submit request while its admission commits (a head
   * start, scheduler.ts), instead of the store's pending documents (none: no call). The caller
   * aborts `signal` if the job is not admitted; what the call gives is recorded after the
   * admission (writes keep their order), and counted only for documents still pending.
   */
  readonly docs?: Promise<readonly Doc[]>;
}

/** A backend call's result as the pipeline sees it. */
export type CallOutcome =
  | { readonly kind: 'ok'; readonly outcome: ChunkOutcome; readonly ms: number }
  /** A generation item's answer (generate/chat jobs). */
  | { readonly kind: 'generated'; readonly outcome: GenerationOutcome; readonly ms: number }
  | { readonly kind: 'failed'; readonly error: BackendError; readonly backendId: string };

export type ChunkVerdict =
  | { readonly kind: 'done' }
  /** Run the range again after `delayMs`, as backend attempt `attempt`. */
  | { readonly kind: 'retry'; readonly attempt: number; readonly delayMs: number }
  /** No node of this process serves the model now: another worker, or later. */
  | { readonly kind: 'no-backend' }
  /** The job cannot progress now (store fault, failing node): run the range again after `delayMs`. */
  | { readonly kind: 'wait'; readonly delayMs: number; readonly reason: WaitReason; readonly message: string };

export interface ChunkProcessorOptions {
  /** Most backend calls in flight from this process (`--workers`); used by `run` only. */
  readonly maxCalls: number;
  readonly chunkRetries: number;
  readonly chunkObserver?: ChunkObserver;
  /** Whole-call timeout of one generation item. @defaultValue 600000 */
  readonly generationTimeoutMs?: number;
}

export interface JobMeta {
  readonly model: string;
  readonly options: EmbedOptions;
  /** @defaultValue 'embed' */
  readonly type?: JobType;
}

/** A slot for one call: an embedding slot, or a generation slot for a generate/chat job's item. */
export type AnyLease = Lease | GenerationLease;

export type Doc = { readonly index: number; readonly text: string };

const DONE: StepResult = Object.freeze({ kind: 'done' });
const LOST: StepResult = Object.freeze({ kind: 'lost' });
const RETRY_BASE_MS = 200;
/** Longest backoff between retries. */
const MAX_BACKOFF_MS = 5000;
/** How long a chunk waits before trying the store again after a store fault. */
const STORE_RETRY_MS = 1000;
/** Longest wait for a slot before re-checking the status and the pool. */
const SLOT_WAIT_MS = 1000;
const META_CACHE = 1000;

/** Backoff before try `attempt + 1`: 200 ms doubling, capped. */
export function backoffMs(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, RETRY_BASE_MS * 2 ** Math.min(attempt, 10));
}

/**
 * Whether a failure may be caused by the documents rather than the node: a refusal (4xx), a
 * server error other than overload (5xx but 503), an invalid vector. Timeouts, connection
 * failures, 429 and 503 say the node is busy or gone.
 */
export function maybeTheDocuments(error: BackendError): boolean {
  if (error.code === 'INPUT_REJECTED' || error.code === 'INVALID_VECTOR') return true;
  return error.code === 'BACKEND_UNAVAILABLE' && error.status !== undefined && error.status >= 500 && error.status !== 503;
}

export class ChunkProcessor {
  private readonly aborts = new AbortRegistry();
  /** Calls in flight per job, for the status poll. */
  private readonly calling = new Map<string, number>();
  /** Model and options per job: they never change, so they are read once. */
  private readonly meta = new Map<string, JobMeta>();
  /** Leases `run` holds (calls in flight, or about to start): at most `maxCalls`. */
  private leased = 0;
  private readonly slotFreed = new EventEmitter().setMaxListeners(0);
  private stopping = false;
  /** Jobs whose last chunk here had to wait (distributed mode's `status_detail`). */
  private readonly waits = new Map<string, StatusDetail>();

  constructor(
    private readonly store: JobStore,
    private readonly pool: BackendPool,
    private readonly options: ChunkProcessorOptions,
    private readonly log: Logger,
  ) {}

  /** Backend calls `run` has in flight (or about to start) now: at most `maxCalls`. */
  get inFlight(): number {
    return this.leased;
  }

  /**
   * One step of `task` on `lease` (used or released here): read its pending documents (the
   * status check), make one call, record what it gave, or say what to do next. Never throws
   * for a store fault (it becomes a `wait`).
   */
  async step(task: ChunkTask, job: JobMeta, lease: AnyLease, how: StepCall = {}): Promise<StepResult> {
    let docs: readonly Doc[];
    try {
      docs = await (how.docs ?? this.store.pendingDocuments(task.jobId, task.start, task.end));
    } catch (error) {
      lease.release();
      return this.storeWait(task, error);
    }
    if (docs.length === 0 || how.signal?.aborted) {
      lease.release();
      return DONE;
    }
    // A generation item is one call: the rest of the range, if any, stays pending for later steps.
    if (isGenerationJob(job.type ?? 'embed')) docs = docs.slice(0, 1);
    const call = await this.callOnLease(task.jobId, job, docs, lease, how.signal);
    if (call.kind !== 'failed') {
      how.onAnswer?.();
      const recorded = await this.record(task, job, call.outcome);
      if (recorded !== true) return recorded;
      // A call superseded by its twin's answer counted nothing the twin did not (metrics count documents once).
      if (!how.signal?.aborted) this.options.chunkObserver?.chunkDone?.(docs.length, call.ms);
      return DONE;
    }
    if (how.duplicate) return LOST;
    return this.afterFailure(task, job, docs, call.error, call.backendId);
  }

  /**
   * Runs one backend call for `docs` on `lease` and turns its result into an outcome: the
   * vectors in document order, or the item's generation (one item per call on a generation
   * lease), or the normalised error.
   */
  async callOnLease(jobId: string, job: JobMeta, docs: readonly Doc[], lease: AnyLease, signal?: AbortSignal): Promise<CallOutcome> {
    const call = this.aborts.register(jobId);
    const abortThis = (): void => call.abort('call superseded');
    if (signal?.aborted) abortThis();
    else signal?.addEventListener('abort', abortThis, { once: true });
    this.calling.set(jobId, (this.calling.get(jobId) ?? 0) + 1);
    const started = performance.now();
    try {
      if ('forward' in lease) {
        const type = job.type === 'chat' ? 'chat' : 'generate';
        const item = docs[0]!;
        const answer = await runGenerationItem(lease, {
          type,
          model: job.model,
          request: item.text,
          signal: call.signal,
          ...(job.options.keepAlive === undefined ? {} : { keepAlive: job.options.keepAlive }),
          ...(this.options.generationTimeoutMs === undefined ? {} : { timeoutMs: this.options.generationTimeoutMs }),
        });
        if (!answer.ok) return { kind: 'failed', error: answer.error, backendId: lease.backendId };
        return { kind: 'generated', outcome: { done: [{ index: item.index, result: answer.result }], failed: [] }, ms: performance.now() - started };
      }
      const result = await lease.embed({ model: job.model, inputs: docs.map((d) => d.text), options: job.options, signal: call.signal });
      const truncated = new Set(result.truncated ?? []);
      const done = docs.map((d, i) => ({ index: d.index, vector: result.vectors[i]!, truncated: truncated.has(i) }));
      // Nothing reads the vectors once they are recorded: the store may take their buffer.
      return { kind: 'ok', outcome: { done, failed: [], handOver: true }, ms: performance.now() - started };
    } catch (error) {
      return { kind: 'failed', error: coerceBackendError(error, lease.backendId), backendId: lease.backendId };
    } finally {
      signal?.removeEventListener('abort', abortThis);
      call.done();
      const left = (this.calling.get(jobId) ?? 1) - 1;
      if (left > 0) this.calling.set(jobId, left);
      else this.calling.delete(jobId);
    }
  }

  /** The retry, bisect or fail decision for a failed call (the rules in this file's header). */
  private async afterFailure(task: ChunkTask, job: JobMeta, docs: readonly Doc[], error: BackendError, backendId: string): Promise<StepResult> {
    const { chunkRetries } = this.options;
    if (error.code === 'CANCELLED') return DONE;
    const range = `${task.start}-${task.end - 1}`;
    const serving = this.servingNodes(job);
    if (error.code === 'MODEL_NOT_FOUND' && task.attempt < chunkRetries && serving.length > 0) {
      // The node that refused lost the model in the pool until its next probe; another node has it.
      return { kind: 'retry', task: { ...task, attempt: task.attempt + 1 }, delayMs: 0 };
    }
    if (maybeTheDocuments(error)) {
      const avoid = [...new Set([...(task.avoid ?? []), backendId])];
      const elsewhere = serving.some((id) => !avoid.includes(id));
      const nodeWide = error.code !== 'INPUT_REJECTED';
      // The node fails every call, not just these documents: the work moves to another node.
      // (With no other node a sick node and documents that all fail cannot be told apart: the
      // bisection goes on, bounded, and the documents fail with the node's code.)
      if (nodeWide && elsewhere && this.pool.circuitOpen(backendId)) return { kind: 'retry', task: { ...task, avoid }, delayMs: 0 };
      if (task.attempt === 0 && nodeWide) {
        // Once more, elsewhere when possible: a 5xx or a bad vector may be a passing fault of the node.
        this.options.chunkObserver?.chunkRetried?.(error.code);
        return { kind: 'retry', task: { ...task, attempt: 1, avoid }, delayMs: elsewhere ? 0 : backoffMs(0) };
      }
      if (docs.length > 1) {
        // Isolate the failing documents: each half is one call; the good ones succeed.
        const mid = docs[Math.floor(docs.length / 2)]!.index;
        const part = { jobId: task.jobId, attempt: Math.max(1, task.attempt) };
        return { kind: 'split', parts: [{ ...part, start: task.start, end: mid }, { ...part, start: mid, end: task.end }] };
      }
      if (elsewhere) return { kind: 'retry', task: { ...task, attempt: task.attempt + 1, avoid }, delayMs: 0 };
    } else if (error.retryable && task.attempt < chunkRetries) {
      this.options.chunkObserver?.chunkRetried?.(error.code);
      const delayMs = backoffMs(task.attempt);
      this.log.warn({ job_id: task.jobId, backend: error.message, attempt: task.attempt + 1 }, `chunk ${range} will be retried in ${delayMs} ms`);
      return { kind: 'retry', task: { ...task, attempt: task.attempt + 1 }, delayMs };
    }
    this.log.warn({ job_id: task.jobId, code: error.code }, `${docs.length} documents of ${range} failed: ${error.message}`);
    this.options.chunkObserver?.chunkFailed?.(docs.length, error.code);
    const recorded = await this.record(task, job, { done: [], failed: docs.map((d) => ({ index: d.index, code: error.code, error: error.message })) });
    return recorded === true ? DONE : recorded;
  }

  /** Nodes that can serve the job's calls: embedding nodes, or generation nodes for its route. */
  private servingNodes(job: JobMeta): string[] {
    const type = job.type ?? 'embed';
    return isGenerationJob(type) ? this.pool.servingGenerationNodes(job.model, generationPathOf(type)) : this.pool.servingNodes(job.model);
  }

  /**
   * Writes an outcome (vectors, or a generation job's results: recordGenerations); a store
   * fault makes the task wait (nothing is charged, nothing failed).
   */
  private async record(task: ChunkTask, job: JobMeta, outcome: ChunkOutcome | GenerationOutcome): Promise<true | StepResult> {
    try {
      const type = job.type ?? 'embed';
      const written = isGenerationJob(type) ? await this.store.recordGenerations(task.jobId, outcome as GenerationOutcome) : await this.store.recordChunk(task.jobId, outcome as ChunkOutcome);
      // false: the job is no longer running (cancelled): its late results are dropped.
      return written ? true : DONE;
    } catch (error) {
      return this.storeWait(task, error);
    }
  }

  private storeWait(task: ChunkTask, error: unknown): StepResult {
    const reason: WaitReason = isStoreError(error) && error.code === 'STORE_FULL' ? 'store_full' : 'store_unavailable';
    const message = `The store cannot take writes now (${(error as Error)?.message ?? String(error)}); the job goes on by itself once it can`;
    this.log.warn({ job_id: task.jobId, reason, err: error }, `chunk ${task.start}-${task.end - 1} waits for the store`);
    return { kind: 'wait', task, delayMs: STORE_RETRY_MS, reason, message };
  }

  /** Model and options of a job (read once), or undefined when it is gone. */
  async jobMeta(jobId: string): Promise<JobMeta | undefined> {
    const known = this.meta.get(jobId);
    if (known) return known;
    const job = await this.store.get(ADMIN_SCOPE, jobId);
    if (!job) return undefined;
    if (this.meta.size >= META_CACHE) this.meta.delete(this.meta.keys().next().value!);
    const meta = { model: job.model, options: job.options, type: job.type };
    this.meta.set(jobId, meta);
    return meta;
  }

  /** Ends the job if its last document is in (store-guarded: one caller wins). */
  async finishIfDone(jobId: string, ttlMs: number): Promise<boolean> {
    try {
      return await finishIfDone(this.store, jobId, ttlMs, this.log);
    } catch (error) {
      this.log.warn({ job_id: jobId, err: error }, 'could not end the job now (store fault); it ends with its next write');
      return false;
    }
  }

  /**
   * Works one chunk of the distributed mode: a slot from this process's own pool (at most
   * `maxCalls`) for each step, the parts of a bisected range in turn, and the job ended when
   * its last document is in.
   */
  async run(data: ChunkData): Promise<ChunkVerdict> {
    const { jobId } = data;
    let job: JobMeta | undefined;
    try {
      job = await this.jobMeta(jobId);
    } catch (error) {
      const wait = this.storeWait({ jobId, start: data.start, end: data.end, attempt: data.attempt }, error);
      return wait.kind === 'wait' ? { kind: 'wait', delayMs: wait.delayMs, reason: wait.reason, message: wait.message } : { kind: 'done' };
    }
    if (!job) return { kind: 'done' };
    const verdict = isGenerationJob(job.type ?? 'embed') ? await this.runItems(data, job) : await this.runTasks(data, job, [{ jobId, start: data.start, end: data.end, attempt: data.attempt }]);
    if (verdict.kind === 'done') await this.finishIfDone(jobId, data.ttlMs);
    if (verdict.kind === 'wait') this.noteWait(jobId, verdict.reason, verdict.message);
    else if (verdict.kind === 'done') this.waits.delete(jobId);
    return verdict;
  }

  /** Why a job this process works cannot progress (distributed mode), since when. */
  statusDetail(jobId: string): StatusDetail | undefined {
    return this.waits.get(jobId);
  }

  private noteWait(jobId: string, reason: WaitReason, message: string): void {
    const known = this.waits.get(jobId);
    if (this.waits.size >= META_CACHE && !known) this.waits.delete(this.waits.keys().next().value!);
    this.waits.set(jobId, { reason, message, since: known?.reason === reason ? known.since : Date.now() });
  }

  /** Steps `tasks` (and the parts and immediate retries they lead to) in turn, each on a slot it waits for. */
  private async runTasks(data: ChunkData, job: JobMeta, tasks: ChunkTask[], first?: AnyLease): Promise<ChunkVerdict> {
    const { jobId } = data;
    let granted = first;
    while (tasks.length > 0) {
      const task = tasks.pop()!;
      const lease = granted ?? (await this.acquireFor(job, task.avoid));
      granted = undefined;
      if (lease === 'stopping') return { kind: 'retry', attempt: data.attempt, delayMs: 0 };
      if (lease === 'no-backend') {
        if ((await this.store.status(jobId)) !== 'running') return { kind: 'done' };
        this.noteWait(jobId, 'no_backend', `No reachable backend of this worker serves model ${job.model}; the job goes on as soon as one does`);
        return { kind: 'no-backend' };
      }
      const result = await this.step(task, job, lease);
      if (result.kind === 'split') tasks.push(result.parts[1], result.parts[0]);
      else if (result.kind === 'retry' && result.delayMs === 0) tasks.push(result.task);
      else if (result.kind === 'retry') return { kind: 'retry', attempt: Math.max(data.attempt, result.task.attempt), delayMs: result.delayMs };
      else if (result.kind === 'wait') return { kind: 'wait', delayMs: result.delayMs, reason: result.reason, message: result.message };
    }
    return { kind: 'done' };
  }

  /**
   * A range of a generate/chat job: each pending item gets its own generation slot as soon as
   * one is free and is stepped on it, side by side, so a range keeps as many slots busy as it
   * has items. The range's verdict is the most pressing of its items' (a wait, a delayed
   * retry, no backend); items already answered are not pending when the range runs again.
   */
  private async runItems(data: ChunkData, job: JobMeta): Promise<ChunkVerdict> {
    const { jobId } = data;
    let docs: Doc[];
    try {
      docs = await this.store.pendingDocuments(jobId, data.start, data.end);
    } catch (error) {
      const wait = this.storeWait({ jobId, start: data.start, end: data.end, attempt: data.attempt }, error);
      return wait.kind === 'wait' ? { kind: 'wait', delayMs: wait.delayMs, reason: wait.reason, message: wait.message } : { kind: 'done' };
    }
    const items: Promise<ChunkVerdict>[] = [];
    let stopped: ChunkVerdict | undefined;
    for (const doc of docs) {
      const task: ChunkTask = { jobId, start: doc.index, end: doc.index + 1, attempt: data.attempt };
      const lease = await this.acquireFor(job, undefined);
      if (lease === 'stopping' || lease === 'no-backend') {
        // Hand the refusal to runTasks, which words it; the items started go on.
        stopped = await this.runTasks(data, job, [task], undefined);
        break;
      }
      items.push(this.runTasks(data, job, [task], lease));
    }
    const verdicts = await Promise.all(items);
    if (stopped) verdicts.push(stopped);
    const rank = (v: ChunkVerdict): number => ({ wait: 3, retry: 2, 'no-backend': 1, done: 0 })[v.kind];
    const worst = verdicts.reduce<ChunkVerdict>((a, b) => (rank(b) > rank(a) ? b : a), { kind: 'done' });
    if (worst.kind !== 'retry') return worst;
    const retries = verdicts.filter((v): v is Extract<ChunkVerdict, { kind: 'retry' }> => v.kind === 'retry');
    return { kind: 'retry', attempt: Math.max(...retries.map((v) => v.attempt)), delayMs: Math.min(...retries.map((v) => v.delayMs)) };
  }

  private recordFailed(jobId: string, docs: readonly { index: number }[], code: ItemErrorCode, error: string): Promise<boolean> {
    return this.store.recordChunk(jobId, { done: [], failed: docs.map((d) => ({ index: d.index, code, error })) });
  }

  /**
   * Fails the range's pending documents with `code` and ends the job if that was the last of
   * them: for a chunk no worker could serve within the pending timeout, or one BullMQ gave up on.
   */
  async failRange(data: Pick<ChunkData, 'jobId' | 'start' | 'end' | 'ttlMs'>, code: ItemErrorCode, error: string): Promise<void> {
    const docs = await this.store.pendingDocuments(data.jobId, data.start, data.end);
    if (docs.length > 0) {
      await this.recordFailed(data.jobId, docs, code, error);
      this.options.chunkObserver?.chunkFailed?.(docs.length, code);
    }
    this.log.warn({ job_id: data.jobId, code }, `documents ${data.start}-${data.end - 1} failed: ${error}`);
    await finishIfDone(this.store, data.jobId, data.ttlMs, this.log);
  }

  /**
   * A slot on a node serving the model, within this process's `maxCalls`; waits while none is
   * free. (The queue hands this process more chunks than calls it may make, so the next chunk
   * is read and ready the moment a slot frees, as in the embedded scheduler.)
   */
  private async acquireFor(job: JobMeta, avoid: readonly string[] | undefined): Promise<AnyLease | 'no-backend' | 'stopping'> {
    const { model } = job;
    const type = job.type ?? 'embed';
    const avoided = avoid && avoid.length > 0 ? new Set(avoid) : undefined;
    for (;;) {
      if (this.stopping) return 'stopping';
      if (isGenerationJob(type)) {
        // Generation slots are their own bound (not `maxCalls`, which counts embedding calls).
        const path = generationPathOf(type);
        if (!this.pool.servesGeneration(model, path)) return 'no-backend';
        const lease = this.pool.tryAcquireGeneration(model, path, avoided);
        if (lease) return lease;
      } else {
        if (!this.pool.serves(model)) return 'no-backend';
        const lease = this.leased < this.options.maxCalls ? this.pool.tryAcquire(model, avoided) : undefined;
        if (lease) {
          this.leased++;
          return countedLease(lease, () => this.freeSlot());
        }
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

  /** A cancel event: abort the job's calls in flight here. */
  abortJob(jobId: string, reason = 'job cancelled'): number {
    this.meta.delete(jobId);
    return this.aborts.abortJob(jobId, reason);
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

/** `lease` that also calls `freed` once, when its slot is free again (used or released). */
function countedLease(lease: Lease, freed: () => void): Lease {
  let done = false;
  const free = (): void => {
    if (done) return;
    done = true;
    freed();
  };
  return {
    backendId: lease.backendId,
    backend: lease.backend,
    release: () => {
      lease.release();
      free();
    },
    embed: async (request) => {
      try {
        return await lease.embed(request);
      } finally {
        free();
      }
    },
  };
}
