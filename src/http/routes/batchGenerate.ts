/**
 * SOLLOL-style batch generation: `POST /api/batch/generate` and `POST /api/batch/chat`. The
 * jobs (job_type `generate` / `chat`) share everything else with embedding jobs: status,
 * cancel, list, retry, results (routes in batch.ts and results.ts), TTL and keys.
 */
import type {} from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { JobManager } from '../../jobs/manager.js';
import { parseGenerationSubmit, type GenerationKind } from '../generationSubmit.js';
import { errorSchema } from '../schemas.js';
import { scopeOf } from '../scope.js';

export interface BatchGenerateRouteOptions {
  readonly manager: JobManager;
  readonly enabled: boolean;
  readonly maxBatchDocuments: number;
}

const SUMMARIES: Readonly<Record<GenerationKind, string>> = {
  generate: 'Submit a batch generation job: {model, prompts} or {model, requests: [{prompt, system?, options?, format?}]}',
  chat: 'Submit a batch chat job: {model, conversations} or {model, requests: [{messages, options?, format?}]}',
};

export async function batchGenerateRoutes(app: FastifyInstance, options: BatchGenerateRouteOptions): Promise<void> {
  for (const kind of ['generate', 'chat'] as const) {
    app.post(`/api/batch/${kind}`, { schema: { tags: ['batch'], summary: SUMMARIES[kind], response: { 400: errorSchema, 429: errorSchema } } }, async (request) => {
      if (!options.enabled) throw new ApiError('BATCH_DISABLED', 'Batch processing disabled. Start gateway with --batch-processing');
      const submit = parseGenerationSubmit(kind, request.body, options.maxBatchDocuments);
      return options.manager.submit(scopeOf(request), { model: submit.model, documents: submit.items, metadata: submit.metadata, options: submit.options, type: kind });
    });
  }
}
