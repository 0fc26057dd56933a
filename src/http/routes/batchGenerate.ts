/**
 * SOLLOL-style batch generation: `POST /api/batch/generate` and `POST /api/batch/chat`. The
 * jobs (job_type `generate` / `chat`) share everything else with embedding jobs: status,
 * cancel, list, retry, results (routes in batch.ts and results.ts), TTL and keys, and job
 * control (priority, run_at, depends_on, callback_url, Idempotency-Key: jobControl.ts).
 */
import type {} from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { JobManager } from '../../jobs/manager.js';
import { parseGenerationSubmit, type GenerationKind } from '../generationSubmit.js';
import { controlFromBody, jobControlProperties, type JobControlBody } from '../jobControl.js';
import { errorSchema } from '../schemas.js';
import { scopeOf } from '../scope.js';
import type { Scope } from '../../jobs/model.js';
import type { SubmitControl } from '../../jobs/scheduling.js';

export interface BatchGenerateRouteOptions {
  readonly manager: JobManager;
  readonly enabled: boolean;
  readonly maxBatchDocuments: number;
}

const SUMMARIES: Readonly<Record<GenerationKind, string>> = {
  generate: 'Submit a batch generation job: {model, prompts} or {model, requests: [{prompt, system?, options?, format?}]}',
  chat: 'Submit a batch chat job: {model, conversations} or {model, requests: [{messages, options?, format?}]}',
};

/** The job-control fields a generation job takes: all but documents_from (its items are requests, not texts). */
const { documents_from: _documentsFrom, ...generationControlProperties } = jobControlProperties;

/** Submits a generate/chat job from a body of that route's shape (also the template runners' way in). */
export function submitGeneration(manager: JobManager, scope: Scope, kind: GenerationKind, body: unknown, maxItems: number, control?: SubmitControl): ReturnType<JobManager['submit']> {
  const submit = parseGenerationSubmit(kind, body, maxItems);
  return manager.submit(scope, { model: submit.model, documents: submit.items, metadata: submit.metadata, options: submit.options, type: kind, ...(control ? { control } : {}) });
}

export async function batchGenerateRoutes(app: FastifyInstance, options: BatchGenerateRouteOptions): Promise<void> {
  for (const kind of ['generate', 'chat'] as const) {
    app.post<{ Body: JobControlBody & Record<string, unknown> }>(`/api/batch/${kind}`, {
      schema: {
        tags: ['batch'],
        summary: SUMMARIES[kind],
        // The items are checked by parseGenerationSubmit (messages naming the item); job control here.
        body: { properties: { model: { type: 'string' }, ...generationControlProperties } },
        response: { 400: errorSchema, 429: errorSchema },
      },
    }, async (request) => {
      if (!options.enabled) throw new ApiError('BATCH_DISABLED', 'Batch processing disabled. Start gateway with --batch-processing');
      const body = request.body ?? {};
      if (body.documents_from !== undefined) {
        throw new ApiError('INVALID_BODY', `Field 'documents_from' is for embedding jobs (documents from a parent's results); a ${kind} job takes its items from '${kind === 'generate' ? 'prompts' : 'conversations'}' or 'requests'`);
      }
      // parseGenerationSubmit reads the job's own fields and leaves the control fields to controlFromBody.
      return submitGeneration(options.manager, scopeOf(request), kind, body, options.maxBatchDocuments, controlFromBody(body));
    });
  }
}
