/**
 * One item of the results, the same JSON object in every format:
 * `{"index":i,"embedding":<vector>}` (plus `"truncated":true`), or
 * `{"index":i,"embedding":null,"error":"...","code":"..."}`. The JSON document puts these in
 * `results`, NDJSON writes one per line. Everything is written as ASCII pieces (see
 * chunks.ts); a vector is added as its own piece, never concatenated into a bigger string.
 */
import type { ItemResult, JobRecord } from '../../jobs/model.js';
import { jsonString, type AsciiChunks } from './chunks.js';
import type { EncodingFormat, ResultsPlan } from './query.js';

/** Adds a vector as a JSON value: an array of floats, or a base64 string of its float32 bytes. */
export type VectorWriter = (out: AsciiChunks, vector: Float32Array) => void;

/**
 * base64 of the little-endian float32 bytes, as OpenAI's `encoding_format: "base64"`. Vectors
 * come from the store as little-endian bytes (the store refuses big-endian hosts), so the
 * bytes are encoded as they are, without a copy.
 */
function writeBase64(out: AsciiChunks, vector: Float32Array): void {
  out.add('"');
  out.add(Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64'));
  out.add('"');
}

export const VECTOR_WRITERS: Readonly<Record<EncodingFormat, VectorWriter>> = {
  float: (out, vector) => out.addFloat32Json(vector),
  base64: writeBase64,
};

const CANCELLED = { error: 'The job was cancelled before this document was processed', code: 'CANCELLED' };

/** Whether the item is in the response: a partial one leaves out items not processed yet. */
export function isListed(item: ItemResult, plan: ResultsPlan): boolean {
  return !(plan.partial && item.state === 'pending');
}

/**
 * Adds the item's object; returns its `errors` entry for a failed item (never for a
 * cancelled one: the job-level entry says it).
 */
export function writeItem(out: AsciiChunks, item: ItemResult, plan: ResultsPlan, writeVector: VectorWriter): string | undefined {
  if (plan.job.type !== 'embed') return writeGenerationItem(out, item, plan);
  out.add(`{"index":${item.index},"embedding":`);
  if (item.state === 'done') {
    writeVector(out, item.vector);
    out.add(item.truncated ? ',"truncated":true}' : '}');
    return undefined;
  }
  if (item.state === 'failed') {
    const fields = `"error":${jsonString(item.error)},"code":${jsonString(item.code)}}`;
    out.add(`null,${fields}`);
    return `{"index":${item.index},${fields}`;
  }
  // Never processed, in a finished job: only a cancel leaves documents pending (not counted as failed).
  const reason = unprocessedReason(plan.job);
  out.add(`null,"error":${jsonString(reason.error)},"code":${jsonString(reason.code)}}`);
  return undefined;
}

/**
 * A generation job's item: `{"index":i,"response"|"message",...}` (the stored result's fields
 * after the index), or `{"index":i,"error","code"}`.
 */
function writeGenerationItem(out: AsciiChunks, item: ItemResult, plan: ResultsPlan): string | undefined {
  if (item.state === 'generated') {
    out.add(`{"index":${item.index},${jsonAscii(item.result.slice(1))}`);
    return undefined;
  }
  const reason = item.state === 'failed' ? item : unprocessedReason(plan.job);
  const fields = `"error":${jsonString(reason.error)},"code":${jsonString(reason.code)}}`;
  out.add(`{"index":${item.index},${fields}`);
  return item.state === 'failed' ? `{"index":${item.index},${fields}` : undefined;
}

/** Stored results are JSON.stringify output: non-ASCII characters escaped, as every piece here must be ASCII. */
function jsonAscii(text: string): string {
  return text.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function unprocessedReason(job: JobRecord): { error: string; code: string } {
  if (job.status === 'cancelled') return CANCELLED;
  return { error: 'This document was not processed', code: job.errors[0]?.code ?? 'BACKEND_UNAVAILABLE' };
}

/** Job-level `errors` entries (`"index": null`). */
export function jobErrors(job: JobRecord): string[] {
  return job.errors.map((e) => `{"index":null,"error":${jsonString(e.error)},"code":${jsonString(e.code)}}`);
}

/**
 * The summary fields shared by the JSON document and the first NDJSON line, without braces.
 * `next_offset` is where the next page starts, null after the last one.
 */
export function summaryFields(plan: ResultsPlan): string {
  const { job } = plan;
  return `"job_id":${jsonString(job.id)},"status":${jsonString(job.status)},"model":${jsonString(job.model)},` +
    `"dimensions":${job.dimensions ?? 'null'},"total_items":${job.totalItems},"completed_items":${job.completedItems},` +
    `"failed_items":${job.failedItems},"offset":${plan.offset},"limit":${plan.limit},` +
    `"next_offset":${plan.end < job.totalItems ? plan.end : 'null'},"partial":${plan.partial},"encoding_format":"${plan.encoding}"`;
}
