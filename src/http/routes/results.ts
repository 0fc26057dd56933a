/**
 * GET /api/batch/results/{id}: the results of a job, streamed page by page, as JSON or NDJSON,
 * floats or base64, all of them or a page (`offset`, `limit`), and on request the finished
 * items of a job still running (`partial=true`).
 * DELETE /api/batch/results/{id}: deletes a finished job and its vectors before its TTL.
 */
import type {} from '@fastify/swagger';
import type { ErrorObject } from 'ajv';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { JobManager } from '../../jobs/manager.js';
import { resultsBody } from '../resultsBody.js';
import { followBody } from '../results/follow.js';
import { chooseFormat, CONTENT_TYPES, planResults, resultsQueryError, type ResultsQuery } from '../results/query.js';
import { scopeOf } from '../scope.js';
import { errorSchema, jobIdParams, resultsQuerySchema } from '../schemas.js';

export interface ResultRouteOptions {
  readonly manager: JobManager;
  readonly enabled: boolean;
}

const tags = ['batch'];

const purgeSchema = {
  type: 'object',
  properties: { job_id: { type: 'string' }, purged: { type: 'boolean' }, message: { type: 'string' } },
} as const;

export async function resultRoutes(app: FastifyInstance, options: ResultRouteOptions): Promise<void> {
  const { manager } = options;
  if (!options.enabled) {
    app.addHook('onRequest', async () => {
      throw new ApiError('BATCH_DISABLED', 'Batch processing disabled. Start gateway with --batch-processing');
    });
  }

  app.get<{ Params: { job_id: string }; Querystring: ResultsQuery & { follow?: boolean } }>('/api/batch/results/:job_id', {
    schema: {
      tags,
      summary: 'Results and per-item errors of a job (streamed; JSON or NDJSON, floats or base64, paged, partial on request)',
      params: jobIdParams,
      querystring: resultsQuerySchema,
      response: { 400: errorSchema, 404: errorSchema, 409: errorSchema },
    },
    // Query failures are answered as INVALID_QUERY here rather than as generic BAD_REQUEST.
    attachValidation: true,
  }, async (request, reply) => {
    if (request.validationError) throw resultsQueryError(request.validationError.validation as ErrorObject[]);
    const query = request.query;
    const scope = scopeOf(request);
    if (query.follow) {
      if (chooseFormat(query.format, request.headers.accept) !== 'ndjson') throw new ApiError('INVALID_QUERY', 'follow=true streams NDJSON: add format=ndjson');
      const job = await manager.job(scope, request.params.job_id);
      const plan = planResults(job, query);
      const abort = new AbortController();
      request.raw.on('close', () => abort.abort());
      const readJob = () => manager.job(scope, job.id).catch(() => undefined);
      const body = followBody(plan, readJob, (offset, limit) => manager.resultsPage(scope, job.id, offset, limit), abort.signal);
      return reply.type(CONTENT_TYPES.ndjson).send(body);
    }
    const job = query.partial ? await manager.job(scope, request.params.job_id) : await manager.finishedJob(scope, request.params.job_id);
    const plan = planResults(job, query);
    const format = chooseFormat(query.format, request.headers.accept);
    const body = resultsBody(format, plan, (offset, limit) => manager.resultsPage(scope, job.id, offset, limit));
    return reply.header('vary', 'accept').type(CONTENT_TYPES[format]).send(body);
  });

  app.delete<{ Params: { job_id: string } }>('/api/batch/results/:job_id', {
    schema: {
      tags,
      summary: 'Delete a finished job and its results now, before its TTL',
      params: jobIdParams,
      response: { 200: purgeSchema, 404: errorSchema, 409: errorSchema },
    },
  }, async (request) => manager.purge(scopeOf(request), request.params.job_id));
}
