/**
 * The Batch and File objects exactly as OpenAI's OpenAPI description has them (schemas `Batch`,
 * `OpenAIFile`, `BatchRequestCounts`, `BatchError`): field names, types (timestamps are integer
 * Unix seconds, absent ones null) and statuses. Groundwork for the routes (see inputFile.ts).
 */
import type { StoredFile } from '../store/files/types.js';
import type { BatchLineError } from './inputFile.js';

export const BATCH_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

export interface BatchRecord {
  readonly id: string;
  readonly owner: string;
  readonly endpoint: string;
  readonly inputFileId: string;
  readonly completionWindow: string;
  readonly status: BatchStatus;
  readonly metadata: Readonly<Record<string, string>> | null;
  readonly errors: readonly BatchLineError[];
  readonly outputFileId: string | null;
  readonly errorFileId: string | null;
  /** Epoch milliseconds of each status change, null until it happens. */
  readonly times: Readonly<Partial<Record<'created' | 'in_progress' | 'expires' | 'finalizing' | 'completed' | 'failed' | 'expired' | 'cancelling' | 'cancelled', number>>>;
  readonly counts: { readonly total: number; readonly completed: number; readonly failed: number };
}

const seconds = (ms: number | undefined): number | null => (ms === undefined ? null : Math.floor(ms / 1000));

export function batchObject(batch: BatchRecord): Record<string, unknown> {
  const t = batch.times;
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: batch.errors.length === 0 ? null : { object: 'list', data: batch.errors.map((e) => ({ code: e.code, message: e.message, param: e.param, line: e.line })) },
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status: batch.status,
    output_file_id: batch.outputFileId,
    error_file_id: batch.errorFileId,
    created_at: seconds(t.created) ?? 0,
    in_progress_at: seconds(t.in_progress),
    expires_at: seconds(t.expires),
    finalizing_at: seconds(t.finalizing),
    completed_at: seconds(t.completed),
    failed_at: seconds(t.failed),
    expired_at: seconds(t.expired),
    cancelling_at: seconds(t.cancelling),
    cancelled_at: seconds(t.cancelled),
    request_counts: { total: batch.counts.total, completed: batch.counts.completed, failed: batch.counts.failed },
    metadata: batch.metadata,
  };
}

export type FileRecord = StoredFile;

export function fileObject(file: FileRecord): Record<string, unknown> {
  return { id: file.id, object: 'file', bytes: file.bytes, created_at: Math.floor(file.createdAt / 1000), filename: file.filename, purpose: file.purpose, status: 'processed', status_details: null };
}

/** One line of an output or error file: `{id, custom_id, response: {status_code, request_id, body} | null, error: {code, message} | null}`. */
export function outputLine(id: string, customId: string, answer: { statusCode: number; requestId: string; body: unknown } | null, error: { code: string; message: string } | null): string {
  return JSON.stringify({
    id,
    custom_id: customId,
    response: answer ? { status_code: answer.statusCode, request_id: answer.requestId, body: answer.body } : null,
    error,
  });
}
