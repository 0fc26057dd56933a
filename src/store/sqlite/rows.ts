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

/**
 * A document as `readDocuments` returns it, in raw mode (an array per row: a download reads
 * thousands of rows, and no object per row is built for them):
 * idx, state, vector (from `vectors` via vector_id, or inline for a document written before
 * migration 8), truncated, code, error, result (a generation item's result, migration 6).
 */
export type DocumentRow = [
  idx: number,
  state: number,
  vector: Buffer | null,
  truncated: number,
  code: string | null,
  error: string | null,
  result: string | null,
];

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
  const index = row[0];
  const state = row[1];
  const vector = row[2];
  const result = row[6];
  if (state === DOC_DONE && result !== null) return { index, state: 'generated', result };
  if (state === DOC_DONE && vector) {
    return { index, state: 'done', vector: blobToVector(vector), truncated: row[3] === 1 };
  }
  if (state === DOC_FAILED) {
    return { index, state: 'failed', code: (row[4] ?? 'BACKEND_UNAVAILABLE') as ItemErrorCode, error: row[5] ?? 'failed' };
  }
  return { index, state: 'pending' };
}

/**
 * Throws unless an insert of `n` rows gave them the ids `first`..`first + n - 1` (what SQLite
 * does while the largest id is below 2^63 - 1; then it would pick free ids at random).
 */
export function consecutiveIds(result: { changes: number; lastInsertRowid: number | bigint }, first: number, n: number): void {
  if (result.changes !== n || Number(result.lastInsertRowid) !== first + n - 1) {
    throw new Error(`an insert of ${n} rows from id ${first} gave ${result.changes} rows up to id ${result.lastInsertRowid}`);
  }
}
