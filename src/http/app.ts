/**
 * The fastify application: JSON parsing, validation, `{detail, code}` errors, the version
 * header, OpenAPI at /openapi.json with a browsable page at /docs, and the route groups.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { BackendPool } from '../backends/pool.js';
import { ApiError } from '../errors.js';
import type { Scheduler } from '../execution/scheduler.js';
import type { JobManager } from '../jobs/manager.js';
import type { GatewayMetrics } from '../metrics.js';
import { VERSION } from '../version.js';
import { sendError, toApiError } from './errorHandler.js';
import { batchRoutes } from './routes/batch.js';
import { metricsRoutes } from './routes/metrics.js';
import { ollamaRoutes } from './routes/ollama.js';
import { openaiRoutes } from './routes/openai.js';
import { resultRoutes } from './routes/results.js';
import { systemRoutes } from './routes/system.js';
import { validatorCompiler } from './validation.js';

export interface AppDependencies {
  readonly manager: JobManager;
  readonly pool: BackendPool;
  readonly scheduler: Scheduler;
  readonly logger: PinoLogger;
  /** Serves GET /metrics when given. */
  readonly metrics?: GatewayMetrics;
  readonly config: {
    readonly batchProcessing: boolean;
    readonly maxBatchDocuments: number;
    readonly maxJobs: number;
    readonly jobTtlMs: number;
    readonly bodyLimitBytes: number;
    readonly instanceId: string;
    /** Inputs per backend call, also for the sync API. */
    readonly chunkSize: number;
    readonly chunkRetries: number;
  };
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Polling clients would flood the log; the core logs job events with their ids instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.setValidatorCompiler(validatorCompiler);
  installJsonParser(app);
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-sollol-version', VERSION);
    reply.header('x-sollol-instance', config.instanceId);
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiError = toApiError(error, request);
    if (apiError.statusCode >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    sendError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new ApiError('NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`));
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'sollol', version: VERSION, description: 'Batch embedding gateway in front of Ollama and other embedding servers' },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(batchRoutes, { manager: deps.manager, enabled: config.batchProcessing, maxBatchDocuments: config.maxBatchDocuments });
  await app.register(resultRoutes, { manager: deps.manager, enabled: config.batchProcessing });
  await app.register(systemRoutes, {
    manager: deps.manager,
    pool: deps.pool,
    scheduler: deps.scheduler,
    batchProcessing: config.batchProcessing,
    maxJobs: config.maxJobs,
    jobTtlMs: config.jobTtlMs,
    instanceId: config.instanceId,
    startedAt: Date.now(),
  });
  // The sync API: Ollama-compatible /api/* and OpenAI-compatible /v1/*, each with its own error shape.
  const sync = { pool: deps.pool, chunkSize: config.chunkSize, retries: config.chunkRetries, maxInputs: config.maxBatchDocuments, startedAt: Date.now() };
  await app.register(ollamaRoutes, { ...sync, instanceId: config.instanceId });
  await app.register(openaiRoutes, { ...sync, prefix: '/v1' });
  if (deps.metrics) await app.register(metricsRoutes, { metrics: deps.metrics });
  return app;
}

/**
 * Bodies are read as JSON whatever the Content-Type says (Ollama does the same, and
 * `curl -d` sends form encoding by default); parse failures become INVALID_JSON.
 */
function installJsonParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (text.trim() === '') {
      if (request.method === 'POST' || request.method === 'PUT') return done(new ApiError('INVALID_JSON', 'Request body is empty; send a JSON object'), undefined);
      return done(null, undefined);
    }
    try {
      done(null, JSON.parse(text));
    } catch (error) {
      done(new ApiError('INVALID_JSON', `Request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
