/** The job as the Batch API shows it (DESIGN.md section 2). */
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
  errors?: { index: null; error: string; code: string }[];
  retry_of?: string;
}

export function statusView(job: JobRecord, now: number): JobStatusView {
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
    metadata: { ...job.metadata, model: job.model },
  };
  if (job.dimensions !== null) view.dimensions = job.dimensions;
  if (job.retryOf !== null) view.retry_of = job.retryOf;
  if (job.errors.length > 0) view.errors = job.errors.map((e) => ({ index: null, error: e.error, code: e.code }));
  return view;
}
