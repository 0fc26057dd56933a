/** Job control routes: PATCH /api/batch/jobs/{id} {priority}. */
import type { FastifyInstance } from 'fastify';
import type { JobManager } from '../../jobs/manager.js';
import type { Priority } from '../../jobs/priority.js';
import { jobControlProperties } from '../jobControl.js';
import { errorSchema, jobIdParams, jobStatusSchema } from '../schemas.js';
import { scopeOf } from '../scope.js';

export async function jobControlRoutes(app: FastifyInstance, options: { readonly manager: JobManager }): Promise<void> {
  const { manager } = options;
  app.patch<{ Params: { job_id: string }; Body: { priority: Priority } }>('/api/batch/jobs/:job_id', {
    schema: {
      tags: ['batch'],
      summary: "Change a scheduled, pending or running job's priority",
      params: jobIdParams,
      body: { type: 'object', required: ['priority'], additionalProperties: false, properties: { priority: jobControlProperties.priority } },
      response: { 200: jobStatusSchema, 400: errorSchema, 404: errorSchema, 409: errorSchema },
    },
  }, async (request) => manager.setPriority(scopeOf(request), request.params.job_id, request.body.priority));
}
