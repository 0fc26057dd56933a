/** The Batch Processing API: /api/batch/* (docs/ARCHITECTURE.md, "Batch API rules"). */
import type {} from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { JobManager, SubmitRequest } from '../../jobs/manager.js';
import type { JobStatus } from '../../jobs/state.js';
import type { EmbedOptions } from '../../backends/types.js';
import { controlFromBody, type JobControlBody } from '../jobControl.js';
import { scopeOf } from '../scope.js';
import { errorSchema, jobIdParams, jobStatusSchema, listQuerySchema, METADATA_MAX_BYTES, submitBodySchema } from '../schemas.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from '../validation.js';

export interface BatchRouteOptions {
  readonly manager: JobManager;
  readonly enabled: boolean;
  readonly maxBatchDocuments: number;
}

interface SubmitBody extends JobControlBody {
  model: string;
  documents?: string[];
  metadata?: Record<string, unknown>;
  options?: { truncate?: boolean; dimensions?: number; keep_alive?: string | number };
}

const tags = ['batch'];

export async function batchRoutes(app: FastifyInstance, options: BatchRouteOptions): Promise<void> {
  const { manager } = options;
  if (!options.enabled) {
    app.addHook('onRequest', async () => {
      throw new ApiError('BATCH_DISABLED', 'Batch processing disabled. Start gateway with --batch-processing');
    });
  }

  app.post<{ Body: SubmitBody }>('/api/batch/embed', {
    schema: {
      tags,
      summary: 'Submit a batch embedding job',
      body: submitBodySchema(options.maxBatchDocuments),
      response: { 400: errorSchema, 429: errorSchema },
    },
    config: { validationErrors: 'submit' },
  }, async (request) => manager.submit(scopeOf(request), toSubmitRequest(request.body)));

  app.get<{ Params: { job_id: string } }>('/api/batch/jobs/:job_id', {
    schema: { tags, summary: 'Job status and progress', params: jobIdParams, response: { 200: jobStatusSchema, 404: errorSchema } },
  }, async (request) => manager.status(scopeOf(request), request.params.job_id));

  app.delete<{ Params: { job_id: string } }>('/api/batch/jobs/:job_id', {
    schema: { tags, summary: 'Cancel a pending or running job', params: jobIdParams, response: { 404: errorSchema } },
  }, async (request) => manager.cancel(scopeOf(request), request.params.job_id));

  app.post<{ Params: { job_id: string } }>('/api/batch/jobs/:job_id/retry', {
    schema: { tags, summary: 'Re-run the failed and unprocessed items of a finished job as a new job', params: jobIdParams, response: { 404: errorSchema, 409: errorSchema } },
  }, async (request) => manager.retry(scopeOf(request), request.params.job_id));

  app.get<{ Querystring: { limit: number; status?: JobStatus } }>('/api/batch/jobs', {
    schema: { tags, summary: 'List jobs, newest first', querystring: listQuerySchema, response: { 400: errorSchema } },
    config: { validationErrors: 'list' },
  }, async (request) => {
    const { limit, status } = request.query;
    return manager.list(scopeOf(request), status ? { limit, status } : { limit });
  });
}

function toSubmitRequest(body: SubmitBody): SubmitRequest {
  if (body.metadata !== undefined && nestedDeeperThan(body.metadata)) {
    throw new ApiError('INVALID_METADATA', `Field 'metadata' nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep`);
  }
  if (body.metadata !== undefined && Buffer.byteLength(JSON.stringify(body.metadata)) > METADATA_MAX_BYTES) {
    throw new ApiError('INVALID_METADATA', `Field 'metadata' is over ${METADATA_MAX_BYTES / 1024} KiB when serialized`);
  }
  if (body.documents === undefined && body.documents_from === undefined) throw new ApiError('NO_DOCUMENTS', 'No documents provided');
  if (body.documents !== undefined && body.documents_from !== undefined) {
    throw new ApiError('INVALID_BODY', "Give either 'documents' or 'documents_from', not both");
  }
  const control = controlFromBody(body);
  return {
    model: body.model,
    documents: body.documents ?? [],
    metadata: body.metadata ?? {},
    options: toEmbedOptions(body.options ?? {}),
    ...(control ? { control } : {}),
  };
}

export function toEmbedOptions(raw: NonNullable<SubmitBody['options']>): EmbedOptions {
  return {
    truncate: raw.truncate ?? true,
    ...(raw.dimensions !== undefined ? { dimensions: raw.dimensions } : {}),
    ...(raw.keep_alive !== undefined ? { keepAlive: raw.keep_alive } : {}),
  };
}
