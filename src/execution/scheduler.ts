/**
 * The scheduler: pull-based and fair. Whenever the pool may have a free slot, it asks the
 * fair queue for the next running job (round-robin) whose model has a node with room,
 * cuts that job's next chunk and hands it, with the granted slot, to the chunk pipeline
 * (chunkProcessor.ts, the same one the distributed workers run), up to `workers` chunks in
 * flight. Items of generate/chat jobs are cut one per range and go on generation slots
 * instead, bounded by those slots rather than by `workers`. What the pipeline answers (split,
 * retry later, wait) goes back into the job's queue of ranges here; every rule about a chunk
 * itself lives there. A cancel event aborts the calls in flight.
 *
 * The tail of a job (chunkSizing.ts): ranges are cut smaller for a node when few documents
 * remain, from what each node holds in time; once nothing is left to cut, a node with nothing
 * in flight may take a duplicate of a straggling chunk (a hedge). The first of the pair whose
 * outcome is in wins and the other call is aborted and ignored; a duplicate's failure is
 * nobody's (chunkProcessor.ts `lost`, pool.ts LeaseUse), so the original's failure alone is
 * retried or bisected. Every document is still counted once (the store counts it only while
 * it is pending).
 *
 * A head start (`headStart`): while a submitted job's admission commits in the store, its first
 * chunks, one per node with a free slot that no queued job wants, are sent from the request's
 * texts, but for the texts the content cache holds (asked of the store just before the
 * admission) and repeated ones. The job joins the queue when `add` says it was admitted; until
 * then its ranges that come back (a retry, a split, one with documents left out) wait, and
 * nothing ends it. Refused or failed admission (`abandonHeadStart`) aborts its calls; whatever
 * they answered finds no job to record into.
 *
 * Jobs that cannot progress are watched each second: a pending job whose model no node lists,
 * up or down (`BackendPool.availability`), fails MODEL_NOT_FOUND; one that found no node serving its model for
 * `pendingTimeoutMs` has its remaining documents failed
 * BACKEND_UNAVAILABLE (finished ones are kept). Meanwhile `statusDetail` says why it waits.
 */
import type { BackendPool } from '../backends/pool.js';
import type { Logger } from '../logger.js';
import type { ChunkObserver } from '../metrics.js';
import { isGenerationJob, type JobRecord } from '../jobs/model.js';
import { terminalPatch } from '../jobs/lifecycle.js';
import type { Priority } from '../jobs/priority.js';
import type { JobStore } from '../store/types.js';
import { ActiveJob, type ChunkRange } from './activeJob.js';
import { ChunkProcessor, type AnyLease, type ChunkTask, type Doc, type StatusDetail, type StepCall, type StepResult, type WaitReason } from './chunkProcessor.js';
import { generationPathOf } from './generationItem.js';
import { pickHedge, queueDueMs, tailChunkSize, type NodePace } from './chunkSizing.js';
import { FairQueue } from './fairQueue.js';
import type { JobEvents } from './jobEvents.js';
import type { HeadStartJob, JobScheduler } from './types.js';

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

const WATCH_INTERVAL_MS = 1000;

/** An embedding call in flight on a node: tail sizing counts it, a hedge may duplicate it. */
interface Flight {
  readonly job: ActiveJob;
  readonly range: ChunkRange;
  readonly node: string;
  readonly docs: number;
  /** performance.now() when it was launched. */
  readonly sentAt: number;
  readonly abort: AbortController;
  /** A hedge: the duplicate of a call in flight on another node. */
  readonly duplicate: boolean;
  /** The other call of a hedged pair, while both are in flight. */
  twin: Flight | undefined;
  /** A duplicate of it was launched (a call is duplicated once at most). */
  hedged: boolean;
  /** Its twin answered first: this call was aborted and whatever it gives is ignored. */
  superseded: boolean;
  /** Its call answered (its result is being recorded): its node is free, nothing to duplicate. */
  answered: boolean;
  /** A head start's call that left documents of its range out: the range is read again once it is done. */
  recheck: boolean;
}

/** A pipeline task back as a range of the job, ready at `notBefore`. */
function rangeOf(task: ChunkTask, notBefore: number): ChunkRange {
  const { start, end, attempt, avoid } = task;
  return { start, end, attempt, notBefore, ...(avoid ? { avoid } : {}) };
}

export class Scheduler implements JobScheduler {
  private readonly queue = new FairQueue<ActiveJob>();
  private readonly processor: ChunkProcessor;
  private readonly inFlightChunks = new Set<Promise<void>>();
  private readonly unsubscribe: (() => void)[] = [];
  private inFlight = 0;
  /** This scheduler's embedding calls in flight per node, in launch order (tail sizing, hedging). */
  private readonly flightsOn = new Map<string, Flight[]>();
  /** performance.now() when each node last answered a call of this scheduler. */
  private readonly answeredAt = new Map<string, number>();
  private stopping = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  /** Wakes the dispatcher when a straggler becomes worth a duplicate (hedge). */
  private hedgeTimer: NodeJS.Timeout | undefined;
  private hedgeAt = 0;
  /** A hedge pass is due on the next turn of the event loop. */
  private hedgeSoon = false;
  private watchTimer: NodeJS.Timeout | undefined;
  /** Why a job cannot progress now, since when. */
  private readonly details = new Map<string, StatusDetail>();
  /** Jobs with a head start whose admission is not known yet, by id. */
  private readonly heads = new Map<string, ActiveJob>();

  constructor(
    private readonly store: JobStore,
    private readonly pool: BackendPool,
    private readonly events: JobEvents,
    private readonly options: SchedulerOptions,
    private readonly log: Logger,
  ) {
    this.processor = new ChunkProcessor(
      store,
      pool,
      {
        maxCalls: options.workers,
        chunkRetries: options.chunkRetries,
        ...(options.chunkObserver ? { chunkObserver: options.chunkObserver } : {}),
        ...(options.generationTimeoutMs === undefined ? {} : { generationTimeoutMs: options.generationTimeoutMs }),
      },
      log,
    );
  }

  start(): void {
    this.unsubscribe.push(this.pool.onCapacity(() => this.dispatch()));
    this.unsubscribe.push(this.events.onCancel((id) => this.onCancel(id)));
    this.watchTimer = setInterval(() => {
      this.watch().catch((error: unknown) => this.log.error({ err: error }, 'job watch failed'));
    }, WATCH_INTERVAL_MS);
    this.watchTimer.unref();
  }

  /** Takes an admitted job (pending or running) into the queue. */
  add(job: JobRecord): void {
    const head = this.heads.get(job.id);
    this.heads.delete(job.id);
    if (job.status !== 'pending' && job.status !== 'running') {
      if (head) this.abortHead(head, 'the job is not running');
      return;
    }
    if (job.status === 'running' && job.completedItems + job.failedItems >= job.totalItems) {
      // Every document was answered at admission (content cache, or a resumed job that had
      // finished): a head start's calls are moot.
      if (head) this.abortHead(head, 'every document was answered at admission');
      this.track(this.processor.finishIfDone(job.id, this.options.jobTtlMs));
      return;
    }
    if (head) {
      // Admitted: its head start's calls go on, the rest of it is cut from where they stopped.
      this.queue.add(head, job.priority);
      if (head.isDrained(this.supersededOf(head))) this.track(this.afterChunk(head));
      else this.dispatch();
      return;
    }
    this.queue.add(new ActiveJob(job.id, job.model, job.options, job.totalItems, job.status, job.createdAt, job.type), job.priority);
    this.dispatch();
  }

  /**
   * The first chunks of a job whose admission is about to be asked of the store, sent from the
   * request's texts: one per node serving the model with a free slot, while no queued job has
   * work waiting for one (a head start takes only slots nobody else wants). The store is asked
   * first (before the admission, in the same order of writes) which of those texts its content
   * cache holds; those, and repeated texts, are not sent, and their range is read again from
   * the store once the call is done. Writes keep their order, so each call's vectors are
   * recorded after the admission, and counted only while pending.
   */
  headStart(request: HeadStartJob): void {
    const total = request.documents.length;
    if (this.stopping || total === 0 || this.heads.has(request.id) || this.queue.get(request.id)) return;
    const now = Date.now();
    if (this.queue.all().some((j) => j.type === 'embed' && j.status === 'running' && j.hasWork(now) && this.pool.hasRoomFor(j.model))) return;
    const job = new ActiveJob(request.id, request.model, request.options, total, 'running', request.createdAt, 'embed');
    const starts: { range: ChunkRange; lease: AnyLease }[] = [];
    const used = new Set<string>();
    while (this.inFlight + starts.length < this.options.workers && job.undispatched > 0) {
      const lease = this.pool.tryAcquire(job.model, used);
      if (!lease || used.has(lease.backendId)) {
        lease?.release();
        break;
      }
      used.add(lease.backendId);
      starts.push({ range: job.cut(this.sizeFor(job, lease.backendId))!, lease });
    }
    if (starts.length === 0) return;
    this.heads.set(job.id, job);
    const from = starts[0]!.range.start;
    const texts = request.documents.slice(from, starts[starts.length - 1]!.range.end);
    const cached = this.store.cachedAmong ? this.store.cachedAmong(job.model, job.options, texts) : Promise.resolve(texts.map(() => false));
    // Each text once over the head start's ranges, in order (a range's share is decided when its probe answer is in).
    const seen = new Set<string>();
    const shares = cached.then(
      (hits) =>
        starts.map(({ range }) => {
          const docs: Doc[] = [];
          for (let index = range.start; index < range.end; index++) {
            const text = request.documents[index]!;
            if (hits[index - from] || seen.has(text)) continue;
            seen.add(text);
            docs.push({ index, text });
          }
          return docs;
        }),
      // The store could not answer: send nothing, the ranges are read from it after admission.
      () => starts.map(() => [] as Doc[]),
    );
    starts.forEach(({ range, lease }, k) => {
      this.launch(job, range, lease, true, undefined, async (flight) => {
        const docs = (await shares)[k]!;
        if (docs.length < range.end - range.start) flight.recheck = true;
        return docs;
      });
    });
  }

  /** The head-started job was not admitted: its calls are aborted and it is forgotten. */
  abandonHeadStart(jobId: string): void {
    const job = this.heads.get(jobId);
    if (!job) return;
    this.heads.delete(jobId);
    const aborted = this.abortHead(job, 'the job was not admitted');
    this.log.debug({ job_id: jobId, aborted_calls: aborted }, 'head start abandoned: the job was not admitted');
  }

  /** Aborts a head start's calls, those waiting for the store's answer included. */
  private abortHead(job: ActiveJob, reason: string): number {
    for (const flight of this.flightsOf(job)) flight.abort.abort(new Error(reason));
    return this.processor.abortJob(job.id, reason);
  }

  /** A queued job's new share of the slots (PATCH priority), from its next chunk on. */
  setPriority(id: string, priority: Priority): void {
    this.queue.setPriority(id, priority);
  }

  /** Whether a job for `model` can be served now, must wait for a backend, or names an unknown model. */
  modelAvailability(model: string): 'served' | 'no-backend' | 'unknown-model' {
    return this.pool.availability(model);
  }

  /** Why the job cannot progress now, if it cannot (its status's `status_detail`). */
  statusDetail(jobId: string): StatusDetail | undefined {
    return this.details.get(jobId);
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
      const job = this.queue.pick((j) => j.type === 'embed' && j.status === 'running' && j.hasWork(now) && this.pool.hasRoomFor(j.model));
      if (!job) break;
      // A requeued range keeps its cut (and the nodes it avoids); a new one is cut for the granted node.
      const requeued = job.takeRequeued(now);
      const lease = this.pool.tryAcquire(job.model, requeued?.avoid ? new Set(requeued.avoid) : undefined);
      const range = requeued ?? (lease ? job.cut(this.sizeFor(job, lease.backendId)) : undefined);
      if (!lease || !range) {
        if (requeued) job.requeue(requeued);
        lease?.release();
        break;
      }
      this.launch(job, range, lease, true);
    }
    this.hedgeNext();
    this.dispatchGeneration(now);
    this.scheduleWake();
  }

  /**
   * Items of generate/chat jobs, one per range, each on a generation slot of a node serving the
   * model on the job's route; bounded by free generation slots, not by `workers`.
   */
  private dispatchGeneration(now: number): void {
    for (;;) {
      const job = this.queue.pick((j) => isGenerationJob(j.type) && j.status === 'running' && j.hasWork(now) && this.generationRoom(j));
      if (!job || !isGenerationJob(job.type)) return;
      const range = job.takeRange(1, now);
      const lease = range ? this.pool.tryAcquireGeneration(job.model, generationPathOf(job.type), range.avoid ? new Set(range.avoid) : undefined) : undefined;
      if (!lease || !range) {
        if (range) job.requeue(range);
        return;
      }
      this.launch(job, range, lease, false);
    }
  }

  /** Room for an item; a model served only by nodes that cannot generate fails the job's items instead of waiting forever. */
  private generationRoom(job: ActiveJob): boolean {
    if (!isGenerationJob(job.type)) return false;
    const path = generationPathOf(job.type);
    if (this.pool.servesGeneration(job.model, path)) return this.pool.hasGenerationRoomFor(job.model, path);
    if (this.pool.serves(job.model)) {
      // Not from inside the queue's pick: failing the job removes it from the queue.
      queueMicrotask(() => this.track(this.failUnservable(job)));
    }
    return false;
  }

  private async failUnservable(job: ActiveJob): Promise<void> {
    if (!this.queue.get(job.id)) return;
    this.forget(job.id);
    const error = `Model ${job.model} is served only by backends that cannot ${job.type} (the embedded model, OpenAI-compatible embedding servers)`;
    await this.processor.failRange({ jobId: job.id, start: 0, end: job.totalItems, ttlMs: this.options.jobTtlMs }, 'INPUT_REJECTED', error);
  }

  /** Documents of the next new range of `job` for node `backendId`: smaller at the tail (chunkSizing.ts). */
  private sizeFor(job: ActiveJob, backendId: string): number {
    const nodes = this.paces(job.model);
    const node = nodes.find((n) => n.id === backendId);
    if (!node) return this.options.chunkSize;
    return tailChunkSize({ chunkSize: this.options.chunkSize, remaining: job.undispatched, node, nodes });
  }

  /**
   * Each node serving `model`: its pace (pool), the documents of this scheduler's calls on it
   * (answered ones included until recorded, as tail sizing was tuned with), and whether it is
   * idle (no call waiting for an answer) and fit for a duplicate.
   */
  private paces(model: string): (NodePace & { readonly id: string; readonly idle: boolean; readonly fit: boolean })[] {
    const serving = new Set(this.pool.servingNodes(model));
    return this.pool
      .snapshot()
      .filter((n) => serving.has(n.url))
      .map((n) => {
        const held = (this.flightsOn.get(n.url) ?? []).filter((f) => !f.superseded);
        const docsInFlight = held.reduce((sum, f) => sum + f.docs, 0);
        const idle = held.every((f) => f.answered);
        // Fit for a duplicate: breaker closed and its last call did not fail.
        const fit = n.circuit === 'closed' && n.consecutive_failures === 0;
        return { id: n.url, msPerDoc: n.ms_per_document, docsInFlight, idle, fit };
      });
  }

  /**
   * The last resort at a job's tail (chunkSizing.ts, pickHedge): while a job has nothing left
   * to cut, a node serving its model with nothing in flight takes a duplicate of the straggling
   * call it would answer clearly sooner than the node holding it. One duplicate per call, of
   * first attempts only (a retried or bisected range already has its own rules).
   */
  private hedge(now: number): void {
    for (const job of this.queue.all()) {
      if (this.inFlight >= this.options.workers) return;
      if (job.type !== 'embed' || job.status !== 'running' || job.undispatched > 0 || job.hasWork(now)) continue;
      const originals = this.flightsOf(job).filter((f) => !f.duplicate && !f.hedged && !f.superseded && !f.answered && f.range.attempt === 0 && !f.range.avoid);
      if (originals.length === 0) continue;
      const clock = performance.now();
      const nodes = this.paces(job.model);
      const measured = Math.min(...nodes.map((n) => n.msPerDoc ?? Number.POSITIVE_INFINITY));
      // A node not measured yet counts as fast as the fastest measured one (as routing does).
      const fastest = Number.isFinite(measured) ? measured : 1;
      const due = this.duesOf(nodes, clock, fastest);
      const pace = new Map(nodes.map((n) => [n.id, n.msPerDoc ?? fastest]));
      // A node that is failing is no place for a duplicate.
      const idle = nodes.filter((n) => n.fit && n.idle).sort((a, b) => (a.msPerDoc ?? fastest) - (b.msPerDoc ?? fastest));
      for (const node of idle) {
        if (this.inFlight >= this.options.workers) return;
        const candidates = originals.filter((f) => !f.hedged && f.node !== node.id);
        const { pick, recheckInMs } = pickHedge(node.msPerDoc ?? fastest, candidates.map((f) => ({ docs: f.docs, dueMs: due.get(f) ?? 0, serviceMs: f.docs * (pace.get(f.node) ?? fastest) })));
        if (recheckInMs !== undefined) this.hedgeLater(recheckInMs);
        if (pick < 0) continue;
        const others = new Set(nodes.map((n) => n.id).filter((id) => id !== node.id));
        const lease = this.pool.tryAcquire(job.model, others, { duplicate: true });
        if (!lease) continue;
        this.launch(job, candidates[pick]!.range, lease, true, candidates[pick]);
      }
    }
  }

  /**
   * A hedge pass once the answers in hand are processed: a slot frees (and the dispatcher runs)
   * the moment a call's answer arrives, before the pipeline marks the call answered, and that
   * call is no straggler. Only while some job has nothing left to cut.
   */
  private hedgeNext(): void {
    if (this.hedgeSoon || !this.queue.all().some((j) => j.type === 'embed' && j.undispatched === 0)) return;
    this.hedgeSoon = true;
    setImmediate(() => {
      this.hedgeSoon = false;
      if (!this.stopping) this.hedge(Date.now());
    });
  }

  /** Runs the dispatcher (and so `hedge`) again in `ms`, unless it is due to run sooner. */
  private hedgeLater(ms: number): void {
    const at = Date.now() + Math.max(1, Math.ceil(ms));
    if (this.stopping || (this.hedgeTimer && this.hedgeAt <= at)) return;
    if (this.hedgeTimer) clearTimeout(this.hedgeTimer);
    this.hedgeAt = at;
    this.hedgeTimer = setTimeout(() => {
      this.hedgeTimer = undefined;
      this.dispatch();
    }, at - Date.now());
    this.hedgeTimer.unref();
  }

  /** When each live call on these nodes is expected to be answered, ms from `now`. */
  private duesOf(nodes: readonly (NodePace & { readonly id: string })[], now: number, fallbackMsPerDoc: number): Map<Flight, number> {
    const due = new Map<Flight, number>();
    for (const node of nodes) {
      const live = (this.flightsOn.get(node.id) ?? []).filter((f) => !f.superseded && !f.answered);
      const times = queueDueMs(now, this.answeredAt.get(node.id) ?? 0, live, node.msPerDoc ?? fallbackMsPerDoc);
      live.forEach((f, i) => due.set(f, times[i]!));
    }
    return due;
  }

  private flightsOf(job: ActiveJob): Flight[] {
    const out: Flight[] = [];
    for (const list of this.flightsOn.values()) for (const f of list) if (f.job === job) out.push(f);
    return out;
  }

  /** Calls of `job` in flight whose outcome no longer matters (superseded by their twin's). */
  private supersededOf(job: ActiveJob): number {
    return this.flightsOf(job).filter((f) => f.superseded).length;
  }

  /**
   * Runs one step of `range` on `lease`; `counted`: an embedding slot, within `workers`;
   * `original`: the call in flight that this one duplicates (a hedge).
   */
  private launch(job: ActiveJob, range: ChunkRange, lease: AnyLease, counted: boolean, original?: Flight, docs?: (flight: Flight) => Promise<readonly Doc[]>): void {
    if (counted) this.inFlight++;
    job.inFlight++;
    const { start, end, attempt, avoid } = range;
    const flight = counted ? this.addFlight(job, range, lease.backendId, original) : undefined;
    const task = { jobId: job.id, start, end, attempt, ...(avoid ? { avoid } : {}) };
    const how: StepCall = flight ? { signal: flight.abort.signal, onAnswer: () => this.answered(flight), ...(flight.duplicate ? { duplicate: true } : {}), ...(docs ? { docs: docs(flight) } : {}) } : {};
    const run = this.processor
      .step(task, { model: job.model, options: job.options, type: job.type }, lease, how)
      .then((result) => this.settle(job, flight, result))
      .catch((error: unknown) => {
        // Not expected (the pipeline turns store and backend faults into results): the range goes back.
        this.log.error({ job_id: job.id, err: error }, 'chunk failed unexpectedly');
        if (!flight?.duplicate && !flight?.superseded) job.requeue({ ...range, notBefore: Date.now() + 1000 });
      })
      .finally(() => {
        if (counted) this.inFlight--;
        job.inFlight--;
        if (flight) this.removeFlight(flight);
        this.inFlightChunks.delete(run);
        this.track(this.afterChunk(job));
      });
    this.inFlightChunks.add(run);
  }

  private addFlight(job: ActiveJob, range: ChunkRange, node: string, original: Flight | undefined): Flight {
    const flight: Flight = {
      job,
      range,
      node,
      docs: range.end - range.start,
      sentAt: performance.now(),
      abort: new AbortController(),
      duplicate: original !== undefined,
      twin: original,
      hedged: false,
      superseded: false,
      answered: false,
      recheck: false,
    };
    if (original) {
      original.twin = flight;
      original.hedged = true;
    }
    const list = this.flightsOn.get(node);
    if (list) list.push(flight);
    else this.flightsOn.set(node, [flight]);
    return flight;
  }

  private removeFlight(flight: Flight): void {
    const list = this.flightsOn.get(flight.node) ?? [];
    const at = list.indexOf(flight);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.flightsOn.delete(flight.node);
    this.answeredAt.set(flight.node, performance.now());
    if (flight.twin) flight.twin.twin = undefined;
    flight.twin = undefined;
  }

  /** A call answered: the first answer of a hedged pair wins, the other call is aborted. */
  private answered(flight: Flight): void {
    flight.answered = true;
    if (!flight.superseded && flight.twin) this.supersede(flight.twin);
  }

  private supersede(flight: Flight): void {
    if (flight.superseded) return;
    flight.superseded = true;
    flight.abort.abort(new Error('the other call of a hedged pair answered first'));
  }

  /**
   * A step's result: a hedged pair's first outcome in wins (the other call is aborted and
   * ignored); a duplicate's failure (`lost`) leaves the decision to the original.
   */
  private settle(job: ActiveJob, flight: Flight | undefined, result: StepResult): void {
    if (flight?.superseded || result.kind === 'lost') return;
    // A head start's range with documents it did not send (cached, or copies): the store says what is left.
    if (flight?.recheck && result.kind === 'done') job.requeue({ ...flight.range, notBefore: 0 });
    // Done without an answer of its own (the documents were no longer pending, the job stopped): the other call is moot too.
    if (flight?.twin && result.kind === 'done') this.supersede(flight.twin);
    this.apply(job, result);
  }

  /** Puts what the pipeline answered back into the job's ranges. */
  private apply(job: ActiveJob, result: StepResult): void {
    const now = Date.now();
    switch (result.kind) {
      case 'done':
        if (this.details.get(job.id)?.reason !== 'no_backend') this.details.delete(job.id);
        return;
      case 'lost':
        return;
      case 'split':
        for (const part of result.parts) job.requeue(rangeOf(part, 0));
        return;
      case 'retry':
      case 'wait': {
        job.requeue(rangeOf(result.task, now + result.delayMs));
        if (result.kind === 'wait') this.setDetail(job.id, result.reason, result.message, now);
        return;
      }
    }
  }

  private setDetail(jobId: string, reason: WaitReason, message: string, now: number): void {
    const known = this.details.get(jobId);
    this.details.set(jobId, { reason, message, since: known?.reason === reason ? known.since : now });
  }

  private async afterChunk(job: ActiveJob): Promise<void> {
    // A head start's job is not admitted yet: `add` or `abandonHeadStart` decides what follows.
    if (this.heads.get(job.id) === job) return this.dispatch();
    // A job whose last range is decided ends, whether or not it is still queued (a give-up
    // may have taken it out while this chunk was in flight).
    if (job.isDrained(this.supersededOf(job)) || !this.queue.get(job.id)) {
      if (await this.processor.finishIfDone(job.id, this.options.jobTtlMs)) this.forget(job.id);
    }
    this.dispatch();
  }

  private forget(jobId: string): void {
    this.queue.remove(jobId);
    this.details.delete(jobId);
  }

  private onCancel(jobId: string): void {
    this.forget(jobId);
    const aborted = this.processor.abortJob(jobId, 'job cancelled');
    this.log.info({ job_id: jobId, aborted_calls: aborted }, 'job cancelled');
  }

  /** Pending jobs start as soon as a backend serves their model. */
  private promotePending(): void {
    for (const job of this.queue.all()) {
      if (job.status !== 'pending' || !this.pool.serves(job.model)) continue;
      job.status = 'running';
      this.track(
        this.store.transition(job.id, 'running', { at: Date.now() }).then(
          (started) => {
            if (!started) return this.forget(job.id);
            this.details.delete(job.id);
            this.log.info({ job_id: job.id }, 'backend available: job started');
            this.dispatch();
          },
          (error: unknown) => {
            // The store could not take the write: try again on the next dispatch.
            job.status = 'pending';
            this.log.warn({ job_id: job.id, err: error }, 'could not start the job now (store fault)');
          },
        ),
      );
    }
  }

  /** Fails jobs that cannot progress: unknown model, or no usable backend within the pending timeout. */
  private async watch(): Promise<void> {
    const now = Date.now();
    for (const job of [...this.queue.all()]) {
      if (job.status === 'pending' && this.pool.availability(job.model) === 'unknown-model') {
        await this.unknownModel(job);
        continue;
      }
      const detail = this.details.get(job.id);
      if (!this.pool.serves(job.model)) {
        if (detail?.reason !== 'no_backend') {
          const message = `No reachable backend serves model ${job.model}; the job starts or goes on as soon as one does`;
          this.details.set(job.id, { reason: 'no_backend', message, since: job.status === 'pending' ? job.createdAt : now });
        }
      } else if (detail?.reason === 'no_backend') {
        this.details.delete(job.id);
      }
      const waiting = this.details.get(job.id);
      if (waiting?.reason === 'no_backend' && now - waiting.since >= this.options.pendingTimeoutMs) await this.giveUp(job);
    }
  }

  private async unknownModel(job: ActiveJob): Promise<void> {
    const error = { code: 'MODEL_NOT_FOUND' as const, error: `Model '${job.model}' is not served by any reachable backend. Served models: ${this.pool.servedModels().join(', ') || 'none'}` };
    try {
      await this.store.transition(job.id, 'failed', terminalPatch(Date.now(), this.options.jobTtlMs, error));
    } catch (err) {
      this.log.warn({ job_id: job.id, err }, 'could not fail the job now (store fault)');
      return;
    }
    this.forget(job.id);
    this.log.warn({ job_id: job.id }, error.error);
  }

  /** The pending timeout passed: the remaining documents fail, finished ones are kept. */
  private async giveUp(job: ActiveJob): Promise<void> {
    const seconds = Math.round(this.options.pendingTimeoutMs / 1000);
    const error = { code: 'BACKEND_UNAVAILABLE' as const, error: `No backend serving model ${job.model} was available for ${seconds} s` };
    try {
      if (job.status === 'pending') {
        await this.store.transition(job.id, 'failed', terminalPatch(Date.now(), this.options.jobTtlMs, error));
      } else {
        await this.processor.failRange({ jobId: job.id, start: 0, end: job.totalItems, ttlMs: this.options.jobTtlMs }, error.code, error.error);
      }
    } catch (err) {
      this.log.warn({ job_id: job.id, err }, 'could not fail the job now (store fault)');
      return;
    }
    this.forget(job.id);
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

  /** A background promise: its failure is logged, never unhandled. */
  private track(promise: Promise<unknown>): void {
    promise.catch((error: unknown) => this.log.error({ err: error }, 'scheduler task failed'));
  }

  /** Stops dispatching, lets in-flight chunks finish for a grace period, then aborts them. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.unsubscribe.forEach((off) => off());
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    if (this.hedgeTimer) clearTimeout(this.hedgeTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    const settled = Promise.allSettled([...this.inFlightChunks]);
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.options.stopGraceMs ?? 5000)));
    await Promise.race([settled, grace]);
    clearTimeout(timer);
    this.processor.abortAll('gateway stopping');
    await Promise.allSettled([...this.inFlightChunks]);
  }
}
