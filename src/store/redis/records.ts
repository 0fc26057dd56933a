/** Mapping between the Redis store's replies and the job model. */
import type { EmbedOptions } from '../../backends/types.js';
import type { ItemErrorCode } from '../../backends/errors.js';
import type { ItemResult, JobError, JobRecord, JobType } from '../../jobs/model.js';
import type { JobStatus } from '../../jobs/state.js';
import { blobToVector } from '../vectorBlob.js';

/** A job hash as HGETALL returns it: field, value, field, value, ... */
export function jobFromHash(flat: readonly string[]): JobRecord {
  const h = new Map<string, string>();
  for (let i = 0; i + 1 < flat.length; i += 2) h.set(flat[i]!, flat[i + 1]!);
  const text = (field: string): string => h.get(field) ?? '';
  const int = (field: string): number => Number(text(field) || '0');
  const maybe = (field: string): number | null => (text(field) === '' ? null : Number(text(field)));
  const { jobType, ...options } = JSON.parse(text('options') || '{}') as EmbedOptions & { jobType?: JobType };
  return {
    id: text('id'),
    owner: text('owner'),
    type: jobType ?? 'embed',
    model: text('model'),
    status: text('status') as JobStatus,
    createdAt: int('createdAt'),
    startedAt: maybe('startedAt'),
    completedAt: maybe('completedAt'),
    totalItems: int('total'),
    completedItems: int('completed'),
    failedItems: int('failed'),
    dimensions: maybe('dims'),
    metadata: JSON.parse(text('metadata') || '{}') as Record<string, unknown>,
    options,
    errors: JSON.parse(text('errors') || '[]') as JobError[],
    retryOf: text('retryOf') || null,
  };
}

/** The member of the job indexes: creation order within one createdAt. */
export function memberOf(flat: readonly string[]): string {
  const at = flat.indexOf('m');
  return at >= 0 && at % 2 === 0 ? (flat[at + 1] ?? '') : '';
}

const DONE = 0x31;
const DONE_TRUNCATED = 0x32;
const FAILED = 0x33;
const FAILED_BY_JOB = 0x34;

/**
 * A job's options as stored: a generation job's type rides in the options JSON (`jobType`), so
 * admission and retry (which copies the options) keep it without a field of their own.
 */
export function storedOptions(options: EmbedOptions, type: JobType): string {
  return JSON.stringify(type === 'embed' ? options : { ...options, jobType: type });
}

/**
 * The READ_RESULTS reply: state slice, job failure code and message, vectors of done documents, errors of failed ones.
 * `generated`: a generation job, whose done items hold their result (JSON text, UTF-8) where vectors go.
 */
export function itemsFromReply(reply: readonly (Buffer | null)[], offset: number, generated = false): ItemResult[] {
  const [state, failCode, failError] = reply;
  if (!state) return [];
  let next = 3;
  const vectors = new Map<number, Buffer | null>();
  const errors = new Map<number, Buffer | null>();
  for (let pos = 0; pos < state.length; pos++) {
    if (state[pos] === DONE || state[pos] === DONE_TRUNCATED) vectors.set(pos, reply[next++] ?? null);
  }
  for (let pos = 0; pos < state.length; pos++) if (state[pos] === FAILED) errors.set(pos, reply[next++] ?? null);
  const items: ItemResult[] = [];
  for (let pos = 0; pos < state.length; pos++) {
    const index = offset + pos;
    const byte = state[pos];
    const vector = vectors.get(pos);
    if (vector && generated) items.push({ index, state: 'generated', result: vector.toString('utf8') });
    else if (vector) items.push({ index, state: 'done', vector: blobToVector(vector), truncated: byte === DONE_TRUNCATED });
    else if (byte === FAILED) items.push(failedItem(index, errors.get(pos)?.toString('utf8')));
    else if (byte === FAILED_BY_JOB) items.push(failedItem(index, `${failCode?.toString('utf8') ?? ''}\n${failError?.toString('utf8') ?? ''}`));
    else items.push({ index, state: 'pending' });
  }
  return items;
}

function failedItem(index: number, reason: string | undefined): ItemResult {
  const cut = reason?.indexOf('\n') ?? -1;
  const code = cut > 0 ? reason!.slice(0, cut) : 'BACKEND_UNAVAILABLE';
  const error = cut >= 0 ? reason!.slice(cut + 1) : 'failed';
  return { index, state: 'failed', code: code as ItemErrorCode, error };
}
