/** The wire types of the Batch API, as the typed client returns them. */

export type JobStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface Progress {
  total_items: number;
  completed_items: number;
  failed_items: number;
  percent: number;
}

export interface JobView {
  job_id: string;
  job_type: string;
  status: JobStatus;
  model: string;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  progress: Progress;
  duration_seconds: number;
  metadata: Record<string, unknown>;
  dimensions?: number;
  errors?: { index: null; error: string; code: string }[];
  retry_of?: string;
  [extra: string]: unknown;
}

export interface SubmitAnswer {
  job_id: string;
  status: JobStatus;
  total_items: number;
  message: string;
}

export interface RetryAnswer extends SubmitAnswer {
  retry_of: string;
  retried_items: number;
}

export interface EmbedOptions {
  truncate?: boolean;
  dimensions?: number;
  keep_alive?: string | number;
}

/** One event of GET /api/batch/jobs/{id}/events (or the WebSocket). */
export interface JobEvent {
  event: 'status' | 'progress' | 'end';
  /** Monotonic per job: pass it back as `lastEventId` to resume. */
  id: number;
  job_id: string;
  /** `status`: the job's full view; `progress` and `end`: the counts (`status`, `total_items`, ...). */
  data: Record<string, unknown> & { job_id: string; status: JobStatus };
}

/** One item of a job's results. */
export type ResultItem =
  | { index: number; embedding: Float32Array; truncated?: boolean }
  | { index: number; embedding: null; error: string; code: string };

/** The first line of the NDJSON results. */
export interface ResultsSummary {
  job_id: string;
  status: JobStatus;
  model: string;
  dimensions: number | null;
  total_items: number;
  completed_items: number;
  failed_items: number;
  offset: number;
  limit: number;
  next_offset: number | null;
  partial: boolean;
  errors: { index: null; error: string; code: string }[];
}

export function isTerminal(status: JobStatus): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}
