/**
 * The job-control port: what job control (priorities, scheduled jobs, dependencies,
 * idempotency keys) keeps beside the jobs, in the same store as the jobs (SQLite tables of
 * migration 5, or Redis keys under the deployment's prefix). It is a port of its own so the
 * JobStore stays about documents and vectors, and every job type gets job control the same way.
 */
import type { Priority } from '../jobs/priority.js';
import type { FilledDocument } from '../jobs/itemFields.js';

/** Where a child job takes its documents from (`documents_from`). */
export interface DocumentsFrom {
  readonly jobId: string;
  /** The item field: `embedding` parents have none to give; generate `response`, chat `message.content`. */
  readonly field: string;
}

/** A job's control record, written before the job is admitted and deleted with it. */
export interface JobControl {
  readonly jobId: string;
  readonly owner: string;
  readonly priority: Priority;
  /** Epoch ms: held `scheduled` until then; null = no delay. */
  readonly runAt: number | null;
  /** Parents that must complete first. */
  readonly dependsOn: readonly string[];
  readonly documentsFrom: DocumentsFrom | null;
  /** The template this job is a run of, if any. */
  readonly template: string | null;
  readonly createdAt: number;
}

/** What the first call with an Idempotency-Key answered. */
export interface IdempotentAnswer {
  /** sha256 (hex) of the method, route and body: a different body under the same key conflicts. */
  readonly fingerprint: string;
  readonly statusCode: number;
  readonly body: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** One POST of a webhook. */
export interface WebhookAttempt {
  /** Epoch ms. */
  readonly at: number;
  /** The receiver's HTTP status; null when it could not be reached. */
  readonly statusCode: number | null;
  readonly error?: string;
}

/**
 * A job's webhook: `waiting` until the job is terminal, then `retrying` (due at `nextAttemptAt`)
 * until a 2xx answer (`delivered`) or the retry time is over (`failed`).
 */
export interface Webhook {
  readonly jobId: string;
  readonly owner: string;
  readonly url: string;
  readonly state: 'waiting' | 'retrying' | 'delivered' | 'failed';
  readonly attempts: readonly WebhookAttempt[];
  /** Epoch ms; a claim moves it to the end of the claimer's lease. */
  readonly nextAttemptAt: number;
  readonly firstAttemptAt: number | null;
  readonly createdAt: number;
}

/** A named job recipe (templates.ts); `schedule` makes it run by itself. */
export interface Template {
  readonly owner: string;
  readonly name: string;
  readonly jobType: string;
  readonly model: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly priority: Priority;
  readonly callbackUrl: string | null;
  /** A cron expression (five or six fields, UTC). */
  readonly schedule: string | null;
  /** The fixed input of scheduled runs (`documents` for embed jobs). */
  readonly input: Readonly<Record<string, unknown>> | null;
  readonly createdAt: number;
  /** Epoch ms of the next scheduled run; null without a schedule. */
  readonly nextRunAt: number | null;
}

/** Documents queued by one POST /api/autobatch/documents. */
export interface AutobatchEntry {
  readonly owner: string;
  /** `model:<name>` or `template:<name>`. */
  readonly target: string;
  readonly documents: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>> | null;
  readonly queuedAt: number;
}

/** One flush of one owner's target: the jobs its documents became. */
export interface AutobatchFlush {
  readonly owner: string;
  readonly target: string;
  readonly jobIds: readonly string[];
  readonly documents: number;
  readonly flushedAt: number;
}

export interface ControlStore {
  /**
   * Gives a `scheduled` job admitted without documents (documents_from) its documents, in
   * order: texts to process, or items failed at once with their code. False (nothing written)
   * when the job is not scheduled or already has documents.
   */
  fillScheduledDocuments(jobId: string, documents: readonly FilledDocument[]): Promise<boolean>;
  /** false (nothing written) when the owner already has a template of that name. */
  putTemplate(template: Template): Promise<boolean>;
  /** One owner's templates, or everyone's (null), by name. */
  templates(owner: string | null): Promise<Template[]>;
  template(owner: string, name: string): Promise<Template | undefined>;
  deleteTemplate(owner: string, name: string): Promise<boolean>;
  /** Templates with a schedule whose next run is due. */
  dueTemplates(now: number): Promise<Template[]>;
  /** Moves a template's next run from `expected` to `next`, atomically; false when another caller did first. */
  advanceTemplate(owner: string, name: string, expected: number, next: number | null): Promise<boolean>;

  queueAutobatch(entry: AutobatchEntry): Promise<void>;
  /** Queued documents per owner (null: everyone) and target. */
  autobatchQueued(owner: string | null): Promise<{ owner: string; target: string; documents: number; oldestAt: number }[]>;
  /** Removes and returns the entries of (owner, target) queued before `before`, oldest first. */
  takeAutobatch(owner: string, target: string, before: number): Promise<AutobatchEntry[]>;
  addAutobatchFlush(flush: AutobatchFlush): Promise<void>;
  /** Newest first. */
  autobatchHistory(owner: string | null, limit: number): Promise<AutobatchFlush[]>;

  putWebhook(webhook: Webhook): Promise<void>;
  webhooks(jobIds: readonly string[]): Promise<Map<string, Webhook>>;
  /** Webhooks still `waiting` or `retrying`, oldest first. */
  openWebhooks(limit: number): Promise<Webhook[]>;
  /**
   * Takes an open webhook that is due (`nextAttemptAt <= now`) for one attempt, atomically: its
   * `nextAttemptAt` becomes `leaseUntil` so no other gateway sends it meanwhile. Undefined when
   * it is not due or not open (another gateway took it).
   */
  claimWebhook(jobId: string, now: number, leaseUntil: number): Promise<Webhook | undefined>;

  putControl(control: JobControl): Promise<void>;
  /** The control records of these jobs that have one. */
  controls(jobIds: readonly string[]): Promise<Map<string, JobControl>>;
  /** false when the job has no control record. */
  setPriority(jobId: string, priority: Priority): Promise<boolean>;
  deleteControl(jobId: string): Promise<void>;
  /** Every job id with a control record (the sweep drops those whose job is gone). */
  controlledJobIds(): Promise<string[]>;

  /** The stored answer for (owner, key), unless it has expired at `now`. */
  idempotentAnswer(owner: string, key: string, now: number): Promise<IdempotentAnswer | undefined>;
  /**
   * Before a call runs: when nothing unexpired is kept for (owner, key), keeps a reservation
   * (`statusCode` 0, expiring at `leaseUntil`) and answers 'reserved'; else answers what is kept
   * (a final answer, or another caller's reservation).
   */
  reserveIdempotency(owner: string, key: string, fingerprint: string, now: number, leaseUntil: number): Promise<IdempotentAnswer | 'reserved'>;
  /** Drops our reservation (the call failed: the key may be used again). */
  releaseIdempotency(owner: string, key: string, fingerprint: string): Promise<void>;
  /** Keeps the answer unless a final one (not a reservation) is already kept and not expired; returns the kept one. */
  keepIdempotentAnswer(owner: string, key: string, answer: IdempotentAnswer, now: number): Promise<IdempotentAnswer>;
  /** Drops expired answers; returns how many. */
  sweepIdempotency(now: number): Promise<number>;
  /**
   * At start, where this process is the store's only writer (the embedded store): drops the
   * reservations of calls that were in progress (no answer kept yet), which belong to a process
   * that is gone; returns how many. Without this a submit retried after a kill -9 waited out the
   * reservation's lease (120 s). A shared store (Redis) keeps them: other gateways may hold them,
   * and their lease frees them.
   */
  releaseDeadReservations(): Promise<number>;
}
