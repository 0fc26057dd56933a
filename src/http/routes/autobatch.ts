/** Autobatch: POST /api/autobatch/documents, GET /api/autobatch, GET /api/autobatch/history. */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.js';
import type { Autobatch } from '../../jobs/autobatch.js';
import { errorSchema, METADATA_MAX_BYTES } from '../schemas.js';
import { scopeOf } from '../scope.js';

const tags = ['autobatch'];

interface QueueBody {
  model?: string;
  template?: string;
  documents: string[];
  metadata?: Record<string, unknown>;
}

export async function autobatchRoutes(app: FastifyInstance, options: { readonly autobatch: Autobatch; readonly maxBatchDocuments: number }): Promise<void> {
  const { autobatch } = options;
  app.post<{ Body: QueueBody }>('/api/autobatch/documents', {
    schema: {
      tags,
      summary: 'Queue documents: the next autobatch flush makes the queued documents of each model or template one job',
      body: {
        type: 'object',
        required: ['documents'],
        additionalProperties: false,
        properties: {
          model: { type: 'string', minLength: 1, maxLength: 200 },
          template: { type: 'string', minLength: 1, maxLength: 64 },
          documents: { type: 'array', minItems: 1, maxItems: options.maxBatchDocuments, items: { type: 'string', minLength: 1 } },
          metadata: { type: 'object', additionalProperties: true },
        },
      },
      response: { 400: errorSchema, 404: errorSchema },
    },
  }, async (request) => {
    const { model, template, documents, metadata } = request.body;
    if ((model === undefined) === (template === undefined)) throw new ApiError('INVALID_BODY', "Give exactly one of 'model' or 'template'");
    if (metadata !== undefined && Buffer.byteLength(JSON.stringify(metadata)) > METADATA_MAX_BYTES) {
      throw new ApiError('INVALID_METADATA', `Field 'metadata' is over ${METADATA_MAX_BYTES / 1024} KiB when serialized`);
    }
    return autobatch.queue(scopeOf(request), model !== undefined ? { model } : { template: template! }, documents, metadata);
  });

  app.get('/api/autobatch', {
    schema: { tags, summary: 'What is queued (per model or template) and when the next flush is' },
  }, async (request) => autobatch.status(scopeOf(request)));

  app.get<{ Querystring: { limit: number } }>('/api/autobatch/history', {
    schema: {
      tags,
      summary: 'Past flushes, newest first: the job ids each one made',
      querystring: { type: 'object', properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
      response: { 400: errorSchema },
    },
  }, async (request) => autobatch.history(scopeOf(request), request.query.limit));
}
