/** The job as stored, shared by the job manager, the scheduler and the stores. */
import type { EmbedOptions } from '../backends/types.js';
import type { ItemErrorCode } from '../backends/errors.js';
import type { Priority } from './priority.js';
import type { JobStatus } from './state.js';

/** Who may see a job: its owner, or an admin who sees all (`owner`: the admin key's own id, owner of the jobs it makes). Every store call takes one. */
export type Scope = { readonly kind: 'admin'; readonly owner?: string } | { readonly kind: 'owner'; readonly owner: string };

export const ADMIN_SCOPE: Scope = Object.freeze({ kind: 'admin' });
/** The owner of jobs made while no API keys are configured. */
export const ANONYMOUS_OWNER = 'anonymous';
export const ANONYMOUS_SCOPE: Scope = Object.freeze({ kind: 'owner', owner: ANONYMOUS_OWNER });

/** A job-level error (`index: null` in the results' `errors`). */
export interface JobError {
  readonly code: ItemErrorCode;
  readonly error: string;
}

/** `embed`: documents to vectors. `generate` / `chat`: one generation per item (docs/ARCHITECTURE.md, "Generation"). */
export type JobType = 'embed' | 'generate' | 'chat';

export function isGenerationJob(type: JobType): type is 'generate' | 'chat' {
  return type === 'generate' || type === 'chat';
}

export interface JobRecord {
  readonly id: string;
  readonly owner: string;
  readonly type: JobType;
  readonly model: string;
  readonly status: JobStatus;
  /** Epoch milliseconds. */
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly completedAt: number | null;
  readonly totalItems: number;
  readonly completedItems: number;
  readonly failedItems: number;
  readonly dimensions: number | null;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly options: EmbedOptions;
  readonly errors: readonly JobError[];
  /** The job this one retries (POST /api/batch/jobs/{id}/retry), if any. */
  readonly retryOf: string | null;
  /**
   * Its priority, when the caller knows it: stores leave it out (it lives in the job's control
   * record, store/control.ts) and the job manager fills it in before handing a job to a scheduler.
   */
  readonly priority?: Priority;
}

/** A retry: a new id and status; everything else comes from the job it retries. */
export interface RetryJob {
  readonly id: string;
  readonly owner: string;
  readonly status: 'pending' | 'running';
  readonly createdAt: number;
}

export interface NewJob {
  readonly id: string;
  readonly owner: string;
  readonly model: string;
  /** `scheduled`: held until its run_at or its parents (jobs/scheduling.ts). */
  readonly status: 'pending' | 'running' | 'scheduled';
  readonly createdAt: number;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly options: EmbedOptions;
  /**
   * One entry per item: the text to embed, or for a generation job the item's request as JSON
   * (`{"prompt",...}` / `{"messages",...}`, job-level options merged in).
   */
  readonly documents: readonly string[];
  /** @defaultValue 'embed' */
  readonly type?: JobType;
}

/** One document's outcome, in document order. */
export type ItemResult =
  | { readonly index: number; readonly state: 'done'; readonly vector: Float32Array; readonly truncated: boolean }
  | { readonly index: number; readonly state: 'failed'; readonly code: ItemErrorCode; readonly error: string }
  | { readonly index: number; readonly state: 'pending' }
  /** A generation job's answer: a JSON object text (`response`/`message`, `done_reason`, counts, `total_duration`). */
  | { readonly index: number; readonly state: 'generated'; readonly result: string };

/** Generation items' outcomes: a result (JSON object text) per done item, or its failure. */
export interface GenerationOutcome {
  readonly done: readonly { readonly index: number; readonly result: string }[];
  readonly failed: readonly { readonly index: number; readonly code: ItemErrorCode; readonly error: string }[];
}

export interface ChunkOutcome {
  readonly done: readonly { readonly index: number; readonly vector: Float32Array; readonly truncated: boolean }[];
  readonly failed: readonly { readonly index: number; readonly code: ItemErrorCode; readonly error: string }[];
  /**
   * The vectors are handed to the store: it may take (detach) the buffer they lie in instead of
   * copying them, so the caller must not read them after the call. Otherwise they stay the caller's.
   */
  readonly handOver?: boolean;
}

export interface JobCounters {
  readonly totalJobsCreated: number;
  readonly totalJobsCompleted: number;
  readonly totalJobsFailed: number;
  readonly totalJobsCancelled: number;
  readonly activeJobs: number;
  readonly pendingJobs: number;
  readonly storedJobs: number;
}
