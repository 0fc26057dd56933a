/** GET /api/batch/results/{id}: the results of a finished job, streamed page by page. */
import type {} from '@fastify/swagger';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { JobManager } from '../../jobs/manager.js';
import { resultsJson } from '../resultsBody.js';
import { scopeOf } from '../scope.js';
import { errorSchema, jobIdParams } from '../schemas.js';

export interface ResultRouteOptions {
  readonly manager: JobManager;
  readonly enabled: boolean;
}

const tags = ['batch'];

export async function resultRoutes(app: FastifyInstance, options: ResultRouteOptions): Promise<void> {
  const { manager } = options;
  if (!options.enabled) {
    app.addHook('onRequest', async () => {
      throw new ApiError('BATCH_DISABLED', 'Batch processing disabled. Start gateway with --batch-processing');
    });
  }

  app.get<{ Params: { job_id: string } }>('/api/batch/results/:job_id', {
    schema: { tags, summary: 'Results and per-item errors of a finished job (streamed)', params: jobIdParams, response: { 404: errorSchema, 409: errorSchema } },
  }, async (request, reply) => {
    const scope = scopeOf(request);
    const job = await manager.finishedJob(scope, request.params.job_id);
    const body = Readable.from(resultsJson(job, (offset, limit) => manager.resultsPage(scope, job.id, offset, limit)), { objectMode: false });
    return reply.type('application/json; charset=utf-8').send(body);
  });
}
