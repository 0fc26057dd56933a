/**
 * The query of GET /api/batch/results/{id}: its validation errors as INVALID_QUERY, the
 * choice of format (query first, then the Accept header), and the plan of one response:
 * which items, which encoding, complete or partial.
 */
import type { ErrorObject } from 'ajv';
import { ApiError, formatCount } from '../../errors.js';
import type { JobRecord } from '../../jobs/model.js';
import { isTerminal } from '../../jobs/state.js';
import { RESULTS_MAX_LIMIT } from '../schemas.js';

export type ResultsFormat = 'json' | 'ndjson';
export type EncodingFormat = 'float' | 'base64';

/** The query once validated (defaults applied by the schema). */
export interface ResultsQuery {
  offset: number;
  limit?: number;
  format?: ResultsFormat;
  encoding_format: EncodingFormat;
  partial: boolean;
}

/** What one response holds. */
export interface ResultsPlan {
  readonly job: JobRecord;
  /** First item index. */
  readonly offset: number;
  /** The limit echoed in the body: the one asked for, or `total_items - offset` without one. */
  readonly limit: number;
  /** One past the last item index (never beyond total_items). */
  readonly end: number;
  /** The job was not finished when the response started: unfinished items are left out. */
  readonly partial: boolean;
  readonly encoding: EncodingFormat;
}

export const CONTENT_TYPES: Readonly<Record<ResultsFormat, string>> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
};

const MESSAGES: Readonly<Record<string, string>> = {
  offset: 'offset must be an integer >= 0',
  limit: `limit must be an integer from 1 to ${formatCount(RESULTS_MAX_LIMIT)}`,
  format: 'format must be json or ndjson',
  encoding_format: 'encoding_format must be float or base64',
  partial: 'partial must be true or false',
};

/** The first schema failure of the results query as a 400 INVALID_QUERY. */
export function resultsQueryError(validation: readonly ErrorObject[]): ApiError {
  const name = validation[0]?.instancePath.slice(1) ?? '';
  return new ApiError('INVALID_QUERY', MESSAGES[name] ?? `Query ${name} ${validation[0]?.message ?? 'is invalid'}`);
}

export function planResults(job: JobRecord, query: ResultsQuery): ResultsPlan {
  const { offset } = query;
  if (offset > job.totalItems) {
    throw new ApiError('INVALID_QUERY', `offset ${offset} is past the end of job ${job.id} (${formatCount(job.totalItems)} items)`);
  }
  const limit = query.limit ?? job.totalItems - offset;
  return {
    job,
    offset,
    limit,
    end: Math.min(job.totalItems, offset + limit),
    partial: !isTerminal(job.status),
    encoding: query.encoding_format,
  };
}

const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/ndjson']);

/**
 * `format` wins; otherwise NDJSON when the Accept header lists an NDJSON type with a quality
 * at least that of application/json (wildcards do not count: a plain client gets JSON).
 */
export function chooseFormat(format: ResultsFormat | undefined, accept: string | undefined): ResultsFormat {
  if (format) return format;
  if (!accept) return 'json';
  let ndjson = 0;
  let json = 0;
  for (const range of accept.toLowerCase().split(',')) {
    const [type = '', ...params] = range.split(';').map((s) => s.trim());
    const q = quality(params);
    if (NDJSON_TYPES.has(type)) ndjson = Math.max(ndjson, q);
    else if (type === 'application/json') json = Math.max(json, q);
  }
  return ndjson > 0 && ndjson >= json ? 'ndjson' : 'json';
}

function quality(params: string[]): number {
  for (const param of params) {
    const [key, value] = param.split('=').map((s) => s.trim());
    if (key === 'q') {
      const q = Number(value);
      return Number.isFinite(q) ? Math.min(1, Math.max(0, q)) : 0;
    }
  }
  return 1;
}
