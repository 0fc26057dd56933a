/** The job as the Batch API shows it (docs/ARCHITECTURE.md, "Batch API rules"). */
import type { FailureSummary } from '../store/types.js';
import type { JobRecord, JobType } from './model.js';

/** ISO 8601 in UTC with an explicit +00:00 offset: older Python `fromisoformat` rejects a bare Z. */
export function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString().replace('Z', '+00:00');
}

export function percent(job: JobRecord): number {
  if (job.totalItems === 0) return 0;
  return Math.round(((job.completedItems + job.failedItems) / job.totalItems) * 10000) / 100;
}

export interface JobStatusView {
  job_id: string;
  job_type: JobType;
  status: string;
  model: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  progress: { total_items: number; completed_items: number; failed_items: number; percent: number };
  duration_seconds: number;
  metadata: Record<string, unknown>;
  dimensions?: number;
  /**
   * Job-level errors (`index: null`) first, then the first failed documents (`index: i`), at
   * most {@link ERROR_ITEMS_SHOWN} of them; `error_counts` has every failed document by code.
   */
  errors?: { index: number | null; error: string; code: string }[];
  error_counts?: Record<string, number>;
  /** Why a pending or running job cannot progress now, since when (ISO time). */
  status_detail?: { reason: string; message: string; since: string };
  retry_of?: string;
}

/** Failed documents listed in a status's `errors` (all of them are in the results). */
export const ERROR_ITEMS_SHOWN = 10;

export interface StatusExtras {
  readonly failures?: FailureSummary;
  readonly detail?: { readonly reason: string; readonly message: string; readonly since: number };
}

export function statusView(job: JobRecord, now: number, extras: StatusExtras = {}): JobStatusView {
  const end = job.completedAt ?? now;
  const view: JobStatusView = {
    job_id: job.id,
    job_type: job.type,
    status: job.status,
    model: job.model,
    created_at: isoTime(job.createdAt)!,
    started_at: isoTime(job.startedAt),
    completed_at: isoTime(job.completedAt),
    progress: {
      total_items: job.totalItems,
      completed_items: job.completedItems,
      failed_items: job.failedItems,
      percent: percent(job),
    },
    duration_seconds: Math.max(0, Math.round(end - job.createdAt) / 1000),
    // The user's own keys win: the job's model is added only when they did not set `model`.
    metadata: { model: job.model, ...job.metadata },
  };
  if (job.dimensions !== null) view.dimensions = job.dimensions;
  if (job.retryOf !== null) view.retry_of = job.retryOf;
  const errors: { index: number | null; error: string; code: string }[] = job.errors.map((e) => ({ index: null, error: e.error, code: e.code }));
  const failures = extras.failures;
  if (failures && failures.first.length > 0) {
    for (const f of failures.first) errors.push({ index: f.index, error: f.error, code: f.code });
    view.error_counts = { ...failures.counts };
  }
  if (errors.length > 0) view.errors = errors;
  if (extras.detail && (job.status === 'pending' || job.status === 'running')) {
    view.status_detail = { reason: extras.detail.reason, message: extras.detail.message, since: isoTime(extras.detail.since)! };
  }
  return view;
}
