/** Mapping between SQLite rows and the job model. */
import type { EmbedOptions } from '../../backends/types.js';
import type { ItemErrorCode } from '../../backends/errors.js';
import type { ItemResult, JobError, JobRecord, JobType } from '../../jobs/model.js';
import type { JobStatus } from '../../jobs/state.js';
import { blobToVector } from '../vectorBlob.js';

export const DOC_PENDING = 0;
export const DOC_DONE = 1;
export const DOC_FAILED = 2;

export interface JobRow {
  seq: number;
  id: string;
  owner: string;
  type: string;
  model: string;
  status: string;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  expires_at: number | null;
  total_items: number;
  completed_items: number;
  failed_items: number;
  dimensions: number | null;
  metadata: string;
  options: string;
  errors: string;
  retry_of: string | null;
}

export interface DocumentRow {
  idx: number;
  state: number;
  /** From `vectors` (vector_id), or inline for a document written before migration 8. */
  vector: Buffer | null;
  truncated: number;
  code: string | null;
  error: string | null;
  /** A generation item's result (migration 6). */
  result: string | null;
}

export function jobFromRow(row: JobRow): JobRecord {
  return {
    id: row.id,
    owner: row.owner,
    type: row.type as JobType,
    model: row.model,
    status: row.status as JobStatus,
    createdAt: row.created_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    totalItems: row.total_items,
    completedItems: row.completed_items,
    failedItems: row.failed_items,
    dimensions: row.dimensions,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    options: JSON.parse(row.options) as EmbedOptions,
    errors: JSON.parse(row.errors) as JobError[],
    retryOf: row.retry_of,
  };
}

export function itemFromRow(row: DocumentRow): ItemResult {
  if (row.state === DOC_DONE && row.result !== null) return { index: row.idx, state: 'generated', result: row.result };
  if (row.state === DOC_DONE && row.vector) {
    return { index: row.idx, state: 'done', vector: blobToVector(row.vector), truncated: row.truncated === 1 };
  }
  if (row.state === DOC_FAILED) {
    return { index: row.idx, state: 'failed', code: (row.code ?? 'BACKEND_UNAVAILABLE') as ItemErrorCode, error: row.error ?? 'failed' };
  }
  return { index: row.idx, state: 'pending' };
}
