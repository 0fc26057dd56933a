/** JSON schemas of the Batch API: validation at the edge, and the source of /openapi.json. */
import { JOB_STATUSES } from '../jobs/state.js';
import { jobControlProperties } from './jobControl.js';

export const METADATA_MAX_BYTES = 16 * 1024;

export function submitBodySchema(maxDocuments: number) {
  return {
    type: 'object',
    // documents, or documents_from (job control): the route checks that exactly one is there.
    required: ['model'],
    additionalProperties: false,
    properties: {
      model: { type: 'string', minLength: 1, maxLength: 200, description: 'Model to embed with, e.g. nomic-embed-text' },
      documents: {
        type: 'array',
        minItems: 1,
        maxItems: maxDocuments,
        items: { type: 'string', minLength: 1 },
        description: `1 to ${maxDocuments} non-empty documents; results[i] belongs to documents[i]`,
      },
      metadata: { type: 'object', additionalProperties: true, description: 'Any JSON object up to 16 KiB, returned with the job' },
      options: {
        type: 'object',
        additionalProperties: false,
        properties: {
          truncate: { type: 'boolean', description: 'Let the backend cut over-long inputs (default true)' },
          dimensions: { type: 'integer', minimum: 1, maximum: 65536, description: 'Output dimensions, for models that support it' },
          keep_alive: { type: ['string', 'number'], description: 'How long the backend keeps the model loaded' },
        },
      },
      ...jobControlProperties,
    },
  } as const;
}

export const jobIdParams = {
  type: 'object',
  properties: { job_id: { type: 'string', description: 'The job id returned on submit' } },
} as const;

export const listQuerySchema = {
  type: 'object',
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100, description: 'Most jobs to return (1-1000)' },
    status: { type: 'string', enum: [...JOB_STATUSES], description: 'Only jobs in this state' },
  },
} as const;

const progressSchema = {
  type: 'object',
  properties: {
    total_items: { type: 'integer' },
    completed_items: { type: 'integer' },
    failed_items: { type: 'integer' },
    percent: { type: 'number' },
  },
} as const;

export const jobStatusSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    job_id: { type: 'string' },
    job_type: { type: 'string' },
    status: { type: 'string', enum: [...JOB_STATUSES] },
    model: { type: 'string' },
    created_at: { type: 'string' },
    started_at: { type: ['string', 'null'] },
    completed_at: { type: ['string', 'null'] },
    progress: progressSchema,
    duration_seconds: { type: 'number' },
    metadata: { type: 'object', additionalProperties: true },
    dimensions: { type: 'integer' },
    errors: {
      type: 'array',
      description: 'Job-level errors (index null) first, then the first 10 failed documents (index i); every failed document is in the results',
      items: {
        type: 'object',
        additionalProperties: true,
        properties: { index: { type: ['integer', 'null'] }, code: { type: 'string' }, error: { type: 'string' } },
      },
    },
    error_counts: {
      type: 'object',
      description: 'Failed documents by item code (present once a document failed)',
      additionalProperties: { type: 'integer' },
    },
    status_detail: {
      type: 'object',
      description: 'Why a pending or running job cannot progress now: reason no_backend, store_full or store_unavailable',
      properties: { reason: { type: 'string' }, message: { type: 'string' }, since: { type: 'string' } },
    },
    retry_of: { type: 'string' },
    priority: { type: 'string' },
    run_at: { type: 'string' },
    depends_on: { type: 'array', items: { type: 'string' } },
    template: { type: 'string' },
    callback_url: { type: 'string' },
    webhook: { type: 'object', additionalProperties: true },
  },
} as const;

export const errorSchema = {
  type: 'object',
  properties: { detail: { type: 'string' }, code: { type: 'string' } },
} as const;

/** Most items one results page may ask for (`limit`); without a limit the rest of the job is sent. */
export const RESULTS_MAX_LIMIT = 10_000;

export const resultsQuerySchema = {
  type: 'object',
  properties: {
    offset: { type: 'integer', minimum: 0, default: 0, description: 'Index of the first item to return (0 to total_items)' },
    limit: { type: 'integer', minimum: 1, maximum: RESULTS_MAX_LIMIT, description: `Most items to return (1-${RESULTS_MAX_LIMIT}); default: every item from offset on` },
    format: { type: 'string', enum: ['json', 'ndjson'], description: 'json (default) or ndjson; Accept: application/x-ndjson also asks for ndjson' },
    encoding_format: { type: 'string', enum: ['float', 'base64'], default: 'float', description: 'float (JSON numbers) or base64 (little-endian float32 bytes)' },
    partial: { type: 'boolean', default: false, description: 'true: answer for a pending or running job too, with its finished items only' },
    follow: { type: 'boolean', default: false, description: 'With format=ndjson: stream items in index order as they finish, end when the job ends' },
  },
} as const;
