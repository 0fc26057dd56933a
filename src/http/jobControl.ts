/**
 * The job-control fields every submit body may carry, whatever the job type: their JSON
 * schema (merged into each submit schema) and their reading into a SubmitControl.
 */
import { ApiError } from '../errors.js';
import { PRIORITIES } from '../jobs/priority.js';
import { parseRunAt, type SubmitControl } from '../jobs/scheduling.js';

/** Most parents one job may wait for. */
export const MAX_DEPENDS_ON = 100;

export const jobControlProperties = {
  priority: { type: 'string', enum: [...PRIORITIES], description: 'low, normal (default) or high: high jobs get 4x the slots of normal ones, normal 4x low ones' },
  run_at: { type: 'string', minLength: 1, maxLength: 64, description: 'ISO 8601 time with an offset (e.g. 2026-12-01T10:00:00+01:00): the job stays scheduled until then' },
  callback_url: { type: 'string', minLength: 1, maxLength: 2048, description: 'POSTed {job_id, status, progress, completed_at}, signed, when the job ends; its host must be in --webhook-allow-hosts' },
  documents_from: {
    type: 'object',
    required: ['job_id', 'field'],
    additionalProperties: false,
    properties: { job_id: { type: 'string', minLength: 1, maxLength: 64 }, field: { type: 'string', minLength: 1, maxLength: 100 } },
    description: "Instead of documents: the items of a parent job's results, e.g. {job_id, field: 'response'} of a generate job; the job waits for the parent",
  },
  depends_on: {
    type: 'array',
    maxItems: MAX_DEPENDS_ON,
    items: { type: 'string', minLength: 1, maxLength: 64 },
    description: 'Job ids that must complete first; a parent that fails or is cancelled fails this job with DEPENDENCY_FAILED',
  },
} as const;

export interface JobControlBody {
  priority?: SubmitControl['priority'];
  run_at?: string;
  depends_on?: string[];
  callback_url?: string;
  documents_from?: { job_id: string; field: string };
}

/** The body's job control, or undefined when it asks for none. */
export function controlFromBody(body: JobControlBody): SubmitControl | undefined {
  if (body.priority === undefined && body.run_at === undefined && body.depends_on === undefined && body.callback_url === undefined && body.documents_from === undefined) return undefined;
  let runAt: number | undefined;
  if (body.run_at !== undefined) {
    runAt = parseRunAt(body.run_at);
    if (runAt === undefined) {
      throw new ApiError('INVALID_RUN_AT', `Field 'run_at' must be an ISO 8601 time with an offset, e.g. 2026-12-01T10:00:00+01:00 or 2026-12-01T09:00:00Z; got '${body.run_at}'`);
    }
  }
  return {
    ...(body.priority !== undefined ? { priority: body.priority } : {}),
    ...(runAt !== undefined ? { runAt } : {}),
    ...(body.depends_on !== undefined ? { dependsOn: body.depends_on } : {}),
    ...(body.callback_url !== undefined ? { callbackUrl: body.callback_url } : {}),
    ...(body.documents_from !== undefined ? { documentsFrom: { jobId: body.documents_from.job_id, field: body.documents_from.field } } : {}),
  };
}
