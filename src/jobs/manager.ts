/**
 * The job manager: admission, status, list, cancel, results and stats for the Batch API.
 * It owns the rules of docs/ARCHITECTURE.md ("Batch API rules"); the store applies them atomically and the
 * scheduler does the work.
 */
import { randomUUID } from 'node:crypto';
import type { EmbedOptions } from '../backends/types.js';
import { ApiError, formatCount } from '../errors.js';
import type { JobEvents } from '../execution/jobEvents.js';
import type { JobScheduler } from '../execution/types.js';
import type { Logger } from '../logger.js';
import type { Admission, AdmissionPolicy, CacheStats, JobStore, StoreFootprint, StoreHealth } from '../store/types.js';
import { terminalPatch } from './lifecycle.js';
import { ADMIN_SCOPE, ANONYMOUS_OWNER, type ItemResult, type JobCounters, type JobRecord, type JobType, type Scope } from './model.js';
import { isTerminal, type JobStatus } from './state.js';
import { ERROR_ITEMS_SHOWN, statusView, type JobStatusView } from './view.js';
import type { ControlStore, JobControl } from '../store/control.js';
import { DEFAULT_PRIORITY, type Priority } from './priority.js';
import { controlView, mustHold, type SubmitControl } from './scheduling.js';
import { Webhooks, webhookView } from './webhooks.js';
import { documentsFromItems, knownTextFields, textAccessor } from './itemFields.js';

export interface SubmitRequest {
  readonly model: string;
  readonly documents: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly options?: EmbedOptions;
  /** Job control (priority, run_at, depends_on), whatever the job type: jobs/scheduling.ts. */
  readonly control?: SubmitControl;
  /** `generate` / `chat`: `documents` are the items' requests as JSON (see NewJob). @defaultValue 'embed' */
  readonly type?: JobType;
}

export interface SubmitAnswer {
  job_id: string;
  status: 'pending' | 'running' | 'scheduled';
  total_items: number;
  message: string;
  priority?: Priority;
  run_at?: string;
  depends_on?: string[];
}

export interface ManagerOptions {
  readonly maxJobs: number;
  readonly jobTtlMs: number;
  readonly sweepIntervalMs: number;
  /** Most pending + running jobs per owner (API key); 0 = no cap. */
  readonly maxActiveJobsPerKey: number;
  /** New jobs are refused while the store holds more bytes than this; 0 = no cap. */
  readonly maxStoreBytes: number;
}

/** What the manager needs to know about models: the pool, seen from the job core. */
export interface ModelCatalog {
  servedModels(): string[];
}

const RETRY_AFTER_SECONDS = 10;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class JobManager {
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: JobStore,
    private readonly scheduler: JobScheduler,
    private readonly events: JobEvents,
    private readonly catalog: ModelCatalog,
    private readonly options: ManagerOptions,
    private readonly log: Logger,
    /** Job control (priorities, scheduled jobs, dependencies); absent: every job runs at once at normal priority. */
    readonly control?: ControlStore,
  ) {}

  /** Set by the gateway: checks callback_url (webhooks.ts); absent: webhooks refused. */
  webhooks: Webhooks | undefined;

  /** Resumes jobs a previous process left unfinished, then starts the TTL sweep. */
  async start(): Promise<void> {
    await this.resumeInterruptedJobs();
    await this.sweep().catch((error: unknown) => this.log.warn({ err: error }, 'expired-job sweep failed at start; trying again on the next tick'));
    // A failed sweep (a store fault) is logged and tried again on the next tick, never an unhandled rejection.
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((error: unknown) => this.log.warn({ err: error }, 'expired-job sweep failed; trying again on the next tick'));
    }, this.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /**
   * Jobs left pending or running by a process that stopped or died go on where they were:
   * their documents' states are in the store, so finished chunks are never sent again and
   * pending jobs start when a backend serves them. Timestamps and counters are untouched.
   */
  private async resumeInterruptedJobs(): Promise<void> {
    const jobs = await this.store.unfinishedJobs();
    const controls = await this.controlsOf(jobs.map((j) => j.id));
    for (const job of jobs) {
      this.scheduler.add(withPriority(job, controls.get(job.id)));
      this.log.info({ job_id: job.id, done: job.completedItems + job.failedItems, total: job.totalItems, status: job.status }, 'resuming job after restart');
    }
  }

  private async sweep(): Promise<void> {
    const removed = await this.store.sweepExpired(Date.now());
    if (removed.length > 0) this.log.info({ removed: removed.length }, 'expired jobs removed');
  }

  async submit(scope: Scope, request: SubmitRequest): Promise<SubmitAnswer> {
    const availability = this.scheduler.modelAvailability(request.model);
    if (availability === 'unknown-model') {
      const served = this.catalog.servedModels();
      const list = served.length > 0 ? served.join(', ') : 'none';
      throw new ApiError('MODEL_NOT_FOUND', `Model '${request.model}' is not served by any backend. Served models: ${list}`);
    }
    await this.assertStoreHasRoom();
    const id = randomUUID();
    const owner = scope.owner ?? 'admin';
    const now = Date.now();
    const control = request.control ? await this.prepareControl(scope, id, owner, request.control, now) : undefined;
    const hold = control !== undefined && mustHold(control, now);
    const status = hold ? 'scheduled' : availability === 'served' ? 'running' : 'pending';
    const createdAt = Date.now();
    const options = request.options ?? { truncate: true };
    // The nodes need not wait for the commit: the first chunks may leave meanwhile (docs/ARCHITECTURE.md,
    // "A job's path"). Asked first: it asks the store about the content cache, ahead of the admission.
    const headStart = status === 'running' && (request.type ?? 'embed') === 'embed';
    if (headStart) this.scheduler.headStart?.({ id, model: request.model, options, documents: request.documents, createdAt });
    const admitting = this.store.admit(
      {
        id,
        // An admin key's jobs belong to that key; a bare admin scope (no key) to "admin".
        owner,
        model: request.model,
        status,
        createdAt,
        metadata: request.metadata ?? {},
        options,
        documents: request.documents,
        ...(request.type === undefined ? {} : { type: request.type }),
      },
      this.policy(),
    );
    let admission: Admission;
    try {
      admission = await admitting;
    } catch (error) {
      if (headStart) this.scheduler.abandonHeadStart?.(id);
      throw error;
    }
    if (!admission.admitted) {
      if (headStart) this.scheduler.abandonHeadStart?.(id);
      if (control) await this.control?.deleteControl(id);
      throw this.refusal(admission, owner);
    }
    const job = admission.job;
    this.logEvictions(admission.evicted);
    if (!hold) this.scheduler.add(withPriority(job, control));
    this.log.info({ job_id: job.id, model: job.model, documents: job.totalItems, status: job.status }, 'job submitted');
    return {
      job_id: job.id,
      status: job.status as 'pending' | 'running' | 'scheduled',
      total_items: job.totalItems,
      message: job.type === 'embed' ? `Batch embedding job submitted with ${job.totalItems} documents` : `Batch ${job.type} job submitted with ${job.totalItems} items`,
      ...(control ? controlView(control) : {}),
    };
  }

  /** Checks the parents (visible to the caller, not finished badly) and keeps the control record before admission. */
  private async prepareControl(scope: Scope, id: string, owner: string, request: SubmitControl, now: number): Promise<JobControl> {
    if (!this.control) throw new ApiError('BAD_REQUEST', 'Job control is not available in this gateway');
    if (request.callbackUrl !== undefined) {
      if (!this.webhooks) throw new ApiError('WEBHOOK_NOT_ALLOWED', 'Webhooks are off on this gateway');
      this.webhooks.check(owner, request.callbackUrl);
    }
    const from = request.documentsFrom;
    if (from) {
      const parent = UUID_PATTERN.test(from.jobId) ? await this.store.get(scope, from.jobId.toLowerCase()) : undefined;
      if (!parent) throw new ApiError('INVALID_DEPENDENCY', `documents_from: job ${from.jobId} not found`);
      if (!textAccessor(parent.type, from.field)) {
        throw new ApiError('INVALID_DEPENDENCY', `documents_from: a ${parent.type} job has no text field '${from.field}' to take documents from (text fields: ${knownTextFields()})`);
      }
    }
    for (const parent of request.dependsOn ?? []) {
      const job = UUID_PATTERN.test(parent) ? await this.store.get(scope, parent.toLowerCase()) : undefined;
      if (!job) throw new ApiError('INVALID_DEPENDENCY', `depends_on: job ${parent} not found`);
    }
    const control: JobControl = {
      jobId: id,
      owner,
      priority: request.priority ?? DEFAULT_PRIORITY,
      runAt: request.runAt ?? null,
      dependsOn: [...new Set([...(request.dependsOn ?? []), ...(from ? [from.jobId] : [])].map((p) => p.toLowerCase()))],
      documentsFrom: from ? { jobId: from.jobId.toLowerCase(), field: from.field } : null,
      template: request.template ?? null,
      createdAt: now,
    };
    await this.control.putControl(control);
    if (request.callbackUrl !== undefined) await this.control.putWebhook(Webhooks.waiting(id, owner, request.callbackUrl, now));
    return control;
  }

  private async controlsOf(ids: readonly string[]): Promise<Map<string, JobControl>> {
    return this.control && ids.length > 0 ? this.control.controls(ids) : new Map();
  }

  /**
   * Releases a scheduled job whose time has come and whose parents completed: `running` when a
   * backend serves its model (else `pending`), then into the scheduler at its priority.
   * Undefined when it is no longer scheduled (cancelled meanwhile, or released by another gateway).
   */
  async release(id: string): Promise<JobRecord | undefined> {
    const record = await this.store.get(ADMIN_SCOPE, id);
    if (!record || record.status !== 'scheduled') return undefined;
    const held = (await this.controlsOf([id])).get(id);
    if (held?.documentsFrom && record.totalItems === 0) await this.fillFromParent(id, held.documentsFrom);
    const to = this.scheduler.modelAvailability(record.model) === 'served' ? 'running' : 'pending';
    const job = await this.store.transition(id, to, { at: Date.now() });
    if (!job) return undefined;
    const control = (await this.controlsOf([id])).get(id);
    this.scheduler.add(withPriority(job, control));
    this.log.info({ job_id: id, status: job.status }, 'scheduled job released');
    return job;
  }

  /** documents_from: the completed parent's items in that field become the child's documents; its failed items fail theirs. */
  private async fillFromParent(id: string, from: { jobId: string; field: string }): Promise<void> {
    const parent = await this.store.get(ADMIN_SCOPE, from.jobId);
    const accessor = parent ? textAccessor(parent.type, from.field) : undefined;
    if (!parent || !accessor) return;
    const items = await this.store.readResults(ADMIN_SCOPE, parent.id, 0, parent.totalItems);
    await this.control!.fillScheduledDocuments(id, documentsFromItems(parent.id, from.field, items, accessor));
  }

  /** Fails a scheduled job whose parent failed or was cancelled (DEPENDENCY_FAILED). */
  async failScheduled(id: string, error: { code: 'DEPENDENCY_FAILED'; error: string }): Promise<boolean> {
    const job = await this.store.transition(id, 'failed', terminalPatch(Date.now(), this.options.jobTtlMs, error));
    if (job) this.log.info({ job_id: id, error: error.error }, 'scheduled job failed');
    return job !== undefined;
  }

  /**
   * PATCH /api/batch/jobs/{id} {priority}: while the job is scheduled, pending or running.
   * A running job's share of the slots changes from its next chunk on.
   */
  async setPriority(scope: Scope, id: string, priority: Priority): Promise<JobStatusView> {
    const job = await this.job(scope, id);
    if (isTerminal(job.status)) {
      throw new ApiError('JOB_NOT_CHANGEABLE', `Job ${job.id} is already ${job.status}; its priority can no longer change`);
    }
    if (!this.control) throw new ApiError('BAD_REQUEST', 'Job control is not available in this gateway');
    if (!(await this.control.setPriority(job.id, priority))) {
      await this.control.putControl({ jobId: job.id, owner: job.owner, priority, runAt: null, dependsOn: [], documentsFrom: null, template: null, createdAt: job.createdAt });
    }
    this.scheduler.setPriority?.(job.id, priority);
    this.log.info({ job_id: job.id, priority }, 'job priority changed');
    return this.status(scope, job.id);
  }

  /**
   * POST /api/batch/jobs/{id}/retry: a new job that keeps the old job's succeeded vectors
   * and re-runs only the other documents (failed, cancelled or never processed), for users
   * whose node was down for part of a batch. The old job stays as it was.
   */
  async retry(scope: Scope, id: string): Promise<SubmitAnswer & { retry_of: string; retried_items: number }> {
    const old = await this.job(scope, id);
    const availability = this.scheduler.modelAvailability(old.model);
    if (availability === 'unknown-model') {
      throw new ApiError('MODEL_NOT_FOUND', `Model '${old.model}' is not served by any backend. Served models: ${this.catalog.servedModels().join(', ') || 'none'}`);
    }
    if (isTerminal(old.status)) await this.assertStoreHasRoom();
    const outcome = await this.store.admitRetry(
      scope,
      old.id,
      { id: randomUUID(), owner: old.owner, status: availability === 'served' ? 'running' : 'pending', createdAt: Date.now() },
      this.policy(),
    );
    if (outcome === 'not-found') throw new ApiError('JOB_NOT_FOUND', `Job ${id} not found`);
    if (outcome === 'active') throw new ApiError('JOB_NOT_FINISHED', `Job ${old.id} is still ${old.status}; retry it once it has finished`);
    if (!outcome.admitted) throw this.refusal(outcome, old.owner);
    const job = outcome.job;
    this.logEvictions(outcome.evicted);
    const retried = job.totalItems - job.completedItems;
    this.scheduler.add(job);
    this.log.info({ job_id: job.id, retry_of: old.id, retried }, 'retry job submitted');
    return {
      job_id: job.id,
      status: job.status as 'pending' | 'running',
      total_items: job.totalItems,
      retry_of: old.id,
      retried_items: retried,
      message: `Retry job submitted: ${retried} of ${job.totalItems} documents to embed again`,
    };
  }

  /**
   * Admission removed finished jobs: expired ones, and at `--max-jobs` the oldest finished ones
   * before their TTL (docs/ARCHITECTURE.md, "Store contract"). Logged, so a vanished job is explained.
   */
  private logEvictions(evicted: number): void {
    if (evicted > 0) this.log.info({ evicted, max_jobs: this.options.maxJobs }, 'finished jobs evicted to admit a new one (expired, or oldest finished before their TTL at --max-jobs)');
  }

  private policy(): AdmissionPolicy {
    return { maxJobs: this.options.maxJobs, now: Date.now(), maxActivePerOwner: this.options.maxActiveJobsPerKey };
  }

  private refusal(admission: Admission & { admitted: false }, owner: string): ApiError {
    if (admission.reason === 'owner-active') {
      const who = owner === ANONYMOUS_OWNER ? 'The anonymous owner (no API keys are configured)' : `Owner '${owner}'`;
      return new ApiError(
        'TOO_MANY_ACTIVE_JOBS',
        `${who} already has ${formatCount(admission.activeJobs)} pending or running jobs, the most one key may have ` +
          `(--max-active-jobs-per-key ${formatCount(this.options.maxActiveJobsPerKey)}); submit again when one finishes, or cancel one`,
        { 'retry-after': String(RETRY_AFTER_SECONDS) },
      );
    }
    return this.tooManyJobs(admission.storedJobs);
  }

  /**
   * The disk cap: while the store is over `--max-store-gb`, new jobs are refused (507) so the
   * disk does not fill; running jobs keep writing and nothing stored is touched.
   */
  private async assertStoreHasRoom(): Promise<void> {
    const cap = this.options.maxStoreBytes;
    if (cap <= 0 || this.store.storedBytes === undefined) return;
    const used = await this.store.storedBytes();
    if (used < cap) return;
    throw new ApiError(
      'STORE_FULL',
      `The job store is full: it holds ${formatBytes(used)}, over its cap of ${formatBytes(cap)} (--max-store-gb). ` +
        'Jobs already stored are safe and running jobs continue. To make room, download and delete finished results ' +
        '(DELETE /api/batch/results/{job_id}), wait for finished jobs to expire (--job-ttl), or restart the gateway with a larger --max-store-gb',
    );
  }

  private tooManyJobs(storedJobs: number): ApiError {
    return new ApiError(
      'TOO_MANY_JOBS',
      `All ${formatCount(storedJobs)} stored jobs are still active (max_jobs ${formatCount(this.options.maxJobs)}); retry when one finishes`,
      { 'retry-after': String(RETRY_AFTER_SECONDS) },
    );
  }

  /** The job, or 404 JOB_NOT_FOUND for an unknown, expired, foreign or malformed id. */
  async job(scope: Scope, id: string): Promise<JobRecord> {
    const job = UUID_PATTERN.test(id) ? await this.store.get(scope, id.toLowerCase()) : undefined;
    if (!job) throw new ApiError('JOB_NOT_FOUND', `Job ${id} not found`);
    return job;
  }

  async status(scope: Scope, id: string): Promise<JobStatusView> {
    const job = await this.job(scope, id);
    const failures = job.failedItems > 0 ? await this.store.failureSummary(job.id, ERROR_ITEMS_SHOWN) : undefined;
    const detail = this.scheduler.statusDetail?.(job.id);
    const control = (await this.controlsOf([job.id])).get(job.id);
    const webhook = this.control ? (await this.control.webhooks([job.id])).get(job.id) : undefined;
    return { ...statusView(job, Date.now(), { ...(failures ? { failures } : {}), ...(detail ? { detail } : {}) }), ...controlView(control), ...webhookView(webhook) };
  }

  async list(scope: Scope, query: { limit: number; status?: JobStatus }): Promise<{ jobs: JobStatusView[]; total: number }> {
    const { jobs, total } = await this.store.list(scope, query);
    const now = Date.now();
    const controls = await this.controlsOf(jobs.map((j) => j.id));
    const webhooks = this.control && jobs.length > 0 ? await this.control.webhooks(jobs.map((j) => j.id)) : new Map();
    return { jobs: jobs.map((j) => ({ ...statusView(j, now), ...controlView(controls.get(j.id)), ...webhookView(webhooks.get(j.id)) })), total };
  }

  async cancel(scope: Scope, id: string): Promise<{ job_id: string; cancelled: true; message: string }> {
    const job = await this.job(scope, id);
    const answer = { job_id: job.id, cancelled: true as const, message: 'Job cancelled successfully' };
    if (job.status === 'cancelled') return answer;
    const error = { code: 'CANCELLED' as const, error: 'Job cancelled by request' };
    // The status is written before the answer, then the event aborts calls in flight.
    const cancelled = await this.store.transition(job.id, 'cancelled', terminalPatch(Date.now(), this.options.jobTtlMs, error));
    if (!cancelled) {
      const now = await this.job(scope, id);
      if (now.status === 'cancelled') return answer;
      throw new ApiError('JOB_NOT_CANCELLABLE', `Job ${job.id} is already ${now.status} and cannot be cancelled`);
    }
    await this.events.publishCancel(job.id);
    return answer;
  }

  /** The job, once terminal; 409 JOB_NOT_FINISHED before. */
  async finishedJob(scope: Scope, id: string): Promise<JobRecord> {
    const job = await this.job(scope, id);
    if (!isTerminal(job.status)) {
      throw new ApiError('JOB_NOT_FINISHED', `Job ${job.id} is still ${job.status}; results are available once it has finished`);
    }
    return job;
  }

  resultsPage(scope: Scope, id: string, offset: number, limit: number): Promise<ItemResult[]> {
    return this.store.readResults(scope, id, offset, limit);
  }

  /** Deletes a finished job and its vectors before its TTL. */
  async purge(scope: Scope, id: string): Promise<{ job_id: string; purged: true; message: string }> {
    const job = await this.job(scope, id);
    const outcome = await this.store.purge(scope, job.id);
    if (outcome === 'not-found') throw new ApiError('JOB_NOT_FOUND', `Job ${id} not found`);
    if (outcome === 'active') {
      throw new ApiError('JOB_NOT_FINISHED', `Job ${job.id} is still ${job.status}; cancel it first, then delete its results`);
    }
    this.log.info({ job_id: job.id }, 'job and results purged');
    return { job_id: job.id, purged: true, message: 'Job and results deleted' };
  }

  cacheStats(): Promise<CacheStats> {
    return this.store.cacheStats();
  }

  /** The store's own word on whether it can write (health and readiness routes). */
  storeHealth(): StoreHealth {
    return this.store.health?.() ?? { writable: true };
  }

  storeFootprint(): Promise<StoreFootprint | undefined> {
    return this.store.footprint?.() ?? Promise.resolve(undefined);
  }

  counters(scope: Scope = ADMIN_SCOPE): Promise<JobCounters> {
    return this.store.counters(scope);
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }
}

function withPriority(job: JobRecord, control: JobControl | undefined): JobRecord {
  return control ? { ...job, priority: control.priority } : job;
}

/** 10737418240 -> "10 GiB", 1536 -> "1.5 KiB". */
function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : Number(value.toFixed(value < 10 ? 2 : 1))} ${units[unit]}`;
}
