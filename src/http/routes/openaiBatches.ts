/**
 * The OpenAI Batch API's batches (register with `{ prefix: '/v1' }`): `POST /batches`,
 * `GET /batches/{id}`, `POST /batches/{id}/cancel`, `GET /batches?limit&after`. The work is
 * openaiBatch/batches.ts; batches belong to the key that made them (any other key gets 404).
 * Errors answer in OpenAI's shape.
 */
import type {} from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import { BATCH_ENDPOINTS } from '../../openaiBatch/inputFile.js';
import { COMPLETION_WINDOWS, type BatchService, type CreateBatch } from '../../openaiBatch/batches.js';
import { batchObject } from '../../openaiBatch/objects.js';
import { sendOpenAIError, toCompatError, CompatError } from '../compatErrors.js';
import { scopeOf } from '../scope.js';

export interface OpenAIBatchRouteOptions {
  readonly batches: BatchService;
}

const MAX_LIST = 100;
/** OpenAI's metadata bounds: 16 pairs, keys up to 64 characters, values up to 512. */
const METADATA_PAIRS = 16;

const createSchema = {
  type: 'object',
  required: ['input_file_id', 'endpoint', 'completion_window'],
  properties: {
    input_file_id: { type: 'string', minLength: 1, maxLength: 200, description: 'A file uploaded with purpose batch' },
    endpoint: { type: 'string', description: `One of ${BATCH_ENDPOINTS.join(', ')}` },
    completion_window: { type: 'string', description: 'Must be "24h"' },
    metadata: {
      type: ['object', 'null'],
      maxProperties: METADATA_PAIRS,
      propertyNames: { maxLength: 64 },
      additionalProperties: { type: 'string', maxLength: 512 },
    },
  },
} as const;

export async function openaiBatchRoutes(app: FastifyInstance, options: OpenAIBatchRouteOptions): Promise<void> {
  const { batches } = options;
  app.setErrorHandler((error, request, reply) => {
    const compat = toCompatError(error, request);
    // Which request field is at fault, for OpenAI's `param`.
    const param = compat.param ?? (compat.code === 'FILE_NOT_FOUND' || compat.code === 'INVALID_FILE' ? 'input_file_id' : /endpoint/.test(compat.message) ? 'endpoint' : /completion_window/.test(compat.message) ? 'completion_window' : null);
    sendOpenAIError(reply, param === compat.param ? compat : new CompatError(compat.code, compat.message, { ...(param ? { param } : {}), headers: { ...compat.headers } }));
  });

  app.post<{ Body: CreateBatch }>(
    '/batches',
    { schema: { tags: ['openai'], summary: `Create a batch from an uploaded input file (endpoint ${BATCH_ENDPOINTS.join(', ')}; completion_window ${COMPLETION_WINDOWS.join(', ')})`, body: createSchema } },
    async (request) => batchObject(await batches.create(scopeOf(request), request.body)),
  );

  app.get<{ Params: { id: string } }>('/batches/:id', { schema: { tags: ['openai'], summary: 'A batch object' } }, async (request) => batchObject(await batches.get(scopeOf(request), request.params.id)));

  app.post<{ Params: { id: string } }>('/batches/:id/cancel', { schema: { tags: ['openai'], summary: 'Cancel a batch: cancelling, then cancelled once lines in flight end (finished lines stay in the output file)' } }, async (request) =>
    batchObject(await batches.cancel(scopeOf(request), request.params.id)),
  );

  const listQuery = { type: 'object', properties: { limit: { type: 'string', description: `1-${MAX_LIST}, default 20` }, after: { type: 'string', description: 'A batch id: list the batches made before it' } } } as const;
  app.get<{ Querystring: { limit?: string; after?: string } }>('/batches', { schema: { tags: ['openai'], querystring: listQuery, summary: `List your batches, newest first (limit 1-${MAX_LIST}, default 20; after: a batch id)` } }, async (request) => {
    const limit = request.query.limit === undefined ? 20 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) throw new ApiError('INVALID_LIMIT', `limit must be an integer from 1 to ${MAX_LIST}`);
    const { after } = request.query;
    const page = await batches.list(scopeOf(request), { limit, ...(after ? { after } : {}) });
    return { object: 'list', data: page.batches.map(batchObject), first_id: page.batches[0]?.id ?? null, last_id: page.batches.at(-1)?.id ?? null, has_more: page.hasMore };
  });
}
