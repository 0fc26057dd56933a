/**
 * The JobStore port. State is kept per document (pending, done, failed with a code), so
 * chunks can be re-cut freely. Vectors and the progress they cause are written in one
 * transaction; admission (TTL sweep, eviction, max jobs) is one atomic operation; stats
 * counters live here, not in process memory. Every read takes a scope.
 *
 * Methods are async so that a networked store (Redis) fits the same port.
 */
import type { ChunkOutcome, GenerationOutcome, ItemResult, JobCounters, JobError, JobRecord, NewJob, RetryJob, Scope } from '../jobs/model.js';
import type { JobStatus, TerminalStatus } from '../jobs/state.js';
import type { ItemErrorCode } from '../backends/errors.js';
import type { EmbedOptions } from '../backends/types.js';

export interface CacheStats {
  readonly enabled: boolean;
  readonly max_bytes: number;
  readonly entries: number;
  readonly bytes: number;
  readonly hits: number;
  readonly misses: number;
}

export interface StoreHealth {
  readonly writable: boolean;
  readonly reason?: string;
}

/** /api/stats `store`: each store adds its own figures (SQLite: file, WAL and free disk bytes). */
export interface StoreFootprint {
  readonly kind: string;
  readonly writable: boolean;
}

export interface AdmissionPolicy {
  readonly maxJobs: number;
  readonly now: number;
  /**
   * Per-key cap: when set (> 0), a job whose owner already has this many pending or running
   * jobs is refused with `reason: 'owner-active'`, checked in the same atomic step as `maxJobs`.
   * Absent or 0: no per-owner cap.
   */
  readonly maxActivePerOwner?: number;
}

export type Admission =
  | { readonly admitted: true; readonly job: JobRecord; readonly evicted: number }
  /** Every stored job is active and `maxJobs` are stored (`reason` may be left out). */
  | { readonly admitted: false; readonly reason?: 'max-jobs'; readonly storedJobs: number }
  /** The owner already has `policy.maxActivePerOwner` pending or running jobs (`activeJobs` of them). */
  | { readonly admitted: false; readonly reason: 'owner-active'; readonly activeJobs: number };

export interface TransitionPatch {
  readonly at: number;
  /** Added to the job's errors (job-level). */
  readonly error?: JobError;
  /** Terminal transitions: when the job and its results expire. */
  readonly expiresAt?: number;
}

/** The failed documents of a job, summed up (`errors` and `error_counts` in its status). */
export interface FailureSummary {
  /** Failed documents per item code (documents failed by the job's own failure included). */
  readonly counts: Readonly<Record<string, number>>;
  /** The first failed documents, in document order, at most the limit asked for. */
  readonly first: readonly { readonly index: number; readonly code: ItemErrorCode; readonly error: string }[];
}

export interface ListQuery {
  readonly limit: number;
  readonly status?: JobStatus;
}

export interface JobStore {
  /** Sweeps expired jobs, evicts the oldest finished ones if full, then inserts the job and its documents. */
  admit(job: NewJob, policy: AdmissionPolicy): Promise<Admission>;
  /**
   * Admits a retry of the terminal job `of`: a new job (`retryOf`) holding the old job's
   * succeeded vectors, with every other document pending again. The old job is untouched.
   */
  admitRetry(scope: Scope, of: string, job: RetryJob, policy: AdmissionPolicy): Promise<Admission | 'not-found' | 'active'>;
  get(scope: Scope, id: string): Promise<JobRecord | undefined>;
  /** Just the status: the cheap re-check the scheduler makes before every backend call. */
  status(id: string): Promise<JobStatus | undefined>;
  /** Newest first; `total` counts every stored job matching the query. */
  list(scope: Scope, query: ListQuery): Promise<{ jobs: JobRecord[]; total: number }>;
  /**
   * Moves the job to `to` if the state machine allows it from its current state, atomically.
   * Returns the updated record, or undefined when the job is gone or the move is not allowed.
   * Entering `failed` marks every still-pending document failed with the error's code.
   */
  transition(id: string, to: JobStatus, patch: TransitionPatch): Promise<JobRecord | undefined>;
  /** Pending documents with index in [from, to), in order. */
  pendingDocuments(id: string, from: number, to: number): Promise<{ index: number; text: string }[]>;
  /**
   * Which of `texts` the content cache holds now for (model, options), without marking them
   * used: a head start (scheduler.ts) sends only the others. Absent: the store cannot tell.
   */
  cachedAmong?(model: string, options: EmbedOptions, texts: readonly string[]): Promise<boolean[]>;
  /**
   * Writes a chunk's vectors and failures and the progress they cause, in one transaction,
   * only while the job is running (a cancelled job's late results are dropped). Returns false
   * when nothing was written. A vector whose length differs from the job's `dimensions` (fixed
   * by the first vector recorded, in this outcome or before) is recorded as failed
   * `INVALID_VECTOR` instead (the store's part of the rule in backends/vectorCheck.ts).
   */
  recordChunk(id: string, outcome: ChunkOutcome): Promise<boolean>;
  /** Counts by code and the first `limit` failed documents of a job (empty when none failed or the job is gone). */
  failureSummary(id: string, limit: number): Promise<FailureSummary>;
  /**
   * The same for generation items: each done item's result (a JSON object text) stored with
   * the item, failures as in recordChunk, progress counted once per item, only while running.
   */
  recordGenerations(id: string, outcome: GenerationOutcome): Promise<boolean>;
  /** Item results with index in [offset, offset + limit), in order. */
  readResults(scope: Scope, id: string, offset: number, limit: number): Promise<ItemResult[]>;
  /** Deletes one terminal job and its documents now; 'active' (nothing deleted) when it is not terminal. */
  purge(scope: Scope, id: string): Promise<'purged' | 'not-found' | 'active'>;
  /** Deletes terminal jobs whose TTL has passed; returns their ids. */
  sweepExpired(now: number): Promise<string[]>;
  /** Jobs left pending or running (e.g. by a process that died). */
  unfinishedJobs(): Promise<JobRecord[]>;
  /**
   * Job counters: for an owner scope that owner's own (`total_jobs_*` included, kept per owner
   * in the store), for the admin scope everyone's.
   */
  counters(scope: Scope): Promise<JobCounters>;
  /** Content-cache figures (shared across owners: it holds vectors, not jobs). */
  cacheStats(): Promise<CacheStats>;
  /**
   * Bytes of data the store holds on its own disk (for SQLite: pages in use), the
   * figure `--max-store-gb` caps: new jobs are refused while it is over. Freed space counts
   * as free, so deleting jobs makes room. A store without a local footprint (Redis) leaves
   * this out and the cap does not apply.
   */
  storedBytes?(): Promise<number>;
  /**
   * Whether the store can take new data now, and why not (a full disk, an I/O fault, an
   * unreachable Redis), for /api/health and /api/ready. Absent: assumed writable.
   */
  health?(): StoreHealth;
  /** The store's sizes for /api/stats `store` (SQLite: database, WAL, free disk). */
  footprint?(): Promise<StoreFootprint>;
  close(): Promise<void>;
}

export type { TerminalStatus };
