/**
 * The fastify application: JSON parsing, validation, `{detail, code}` errors, the version
 * header, API keys and per-key limits, OpenAPI at /openapi.json with a browsable page at
 * /docs, and the route groups.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import secureJson from 'secure-json-parse';
import type { ApiKey } from '../auth/keys.js';
import type { BackendPool } from '../backends/pool.js';
import { ApiError } from '../errors.js';
import { isStoreError } from '../store/errors.js';
import type { JobScheduler } from '../execution/types.js';
import type { JobManager } from '../jobs/manager.js';
import type { GatewayMetrics } from '../metrics.js';
import { VERSION } from '../version.js';
import { installAuth } from './auth.js';
import { frameworkErrorHandler } from './compatErrors.js';
import { clientErrorHandler, sendError, toApiError } from './errorHandler.js';
import { installDocumentLimit } from './limits.js';
import { installRateLimit, type SharedRateLimit } from './rateLimit.js';
import { installIdempotency } from './idempotency.js';
import { jobControlRoutes } from './routes/jobControl.js';
import { templateRoutes } from './routes/templates.js';
import { autobatchRoutes } from './routes/autobatch.js';
import type { Templates } from '../jobs/templates.js';
import type { Autobatch } from '../jobs/autobatch.js';
import { batchRoutes } from './routes/batch.js';
import { metricsRoutes } from './routes/metrics.js';
import { ollamaRoutes } from './routes/ollama.js';
import { openaiRoutes } from './routes/openai.js';
import { openaiGenerateRoutes } from './routes/openaiGenerate.js';
import { batchGenerateRoutes } from './routes/batchGenerate.js';
import { openaiFileRoutes } from './routes/openaiFiles.js';
import type { FileStore } from '../store/files/types.js';
import type { BatchService } from '../openaiBatch/batches.js';
import { openaiBatchRoutes } from './routes/openaiBatches.js';
import { resultRoutes } from './routes/results.js';
import { eventRoutes } from './routes/events.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { systemRoutes } from './routes/system.js';
import { validatorCompiler } from './validation.js';

export interface AppDependencies {
  readonly manager: JobManager;
  readonly pool: BackendPool;
  readonly scheduler: JobScheduler;
  readonly logger: PinoLogger;
  /** Serves GET /metrics when given. */
  readonly metrics?: GatewayMetrics;
  /** Distributed mode: the rate limit is counted in this Redis, across gateways. */
  readonly sharedRateLimit?: SharedRateLimit;
  /** Serves /api/batch/templates when given. */
  readonly templates?: Templates;
  /** Serves /api/autobatch when given. */
  readonly autobatch?: Autobatch;
  /** Serves the OpenAI Files API (/v1/files) when given. */
  readonly files?: FileStore;
  /** Serves the OpenAI Batch API's batches (/v1/batches) when given. */
  readonly batches?: BatchService;
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
    /** Empty: open, every request acts as the anonymous owner. */
    readonly apiKeys: readonly ApiKey[];
    readonly rateLimitPerMinute: number;
    readonly maxDocumentChars: number;
    readonly requestTimeoutMs: number;
    readonly headersTimeoutMs: number;
  };
}

export async function buildApp(deps: AppDependencies): Promise<FastifyInstance> {
  const { config } = deps;
  // Fastify answers malformed paths and unparseable HTTP itself, before any hook: these give
  // those answers the route family's shape and the headers every answer carries.
  const alwaysHeaders = { 'x-sollol-version': VERSION, 'x-sollol-instance': config.instanceId };
  const app = Fastify({
    frameworkErrors: frameworkErrorHandler(alwaysHeaders),
    clientErrorHandler: clientErrorHandler(alwaysHeaders),
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Polling clients would flood the log; the core logs job events with their ids instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    // A request (headers and body) must arrive within requestTimeoutMs: a body that trickles is
    // cut with 408 (clientErrorHandler). Node checks the deadlines every connectionsCheckingInterval.
    requestTimeout: config.requestTimeoutMs,
    http: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: config.headersTimeoutMs,
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(config.requestTimeoutMs / 4))),
    },
  });
  app.setValidatorCompiler(validatorCompiler);
  installJsonParser(app);
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-sollol-version', VERSION);
    reply.header('x-sollol-instance', config.instanceId);
  });
  // Before every route: hooks and the limiter's onRoute hook only reach routes registered after them.
  installAuth(app, config.apiKeys);
  await installRateLimit(app, config.rateLimitPerMinute, config.apiKeys.length > 0, deps.sharedRateLimit);
  installDocumentLimit(app, config.maxDocumentChars);
  if (deps.manager.control) installIdempotency(app, deps.manager.control);
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const apiError = toApiError(error, request);
    if (isStoreError(error)) request.log.warn({ url: request.url, code: error.code, error: error.message }, 'request refused: store fault');
    else if (apiError.statusCode >= 500) request.log.error({ err: error, url: request.url }, 'request failed');
    sendError(reply, apiError);
  });
  app.setNotFoundHandler((request, reply) => {
    sendError(reply, new ApiError('NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`));
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'sollol', version: VERSION, description: 'Batch embedding gateway in front of Ollama and other embedding servers' },
      ...(config.apiKeys.length > 0 ? keySecurity() : {}),
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  await app.register(batchRoutes, { manager: deps.manager, enabled: config.batchProcessing, maxBatchDocuments: config.maxBatchDocuments });
  await app.register(batchGenerateRoutes, { manager: deps.manager, enabled: config.batchProcessing, maxBatchDocuments: config.maxBatchDocuments });
  await app.register(resultRoutes, { manager: deps.manager, enabled: config.batchProcessing });
  await app.register(jobControlRoutes, { manager: deps.manager });
  if (deps.templates) await app.register(templateRoutes, { templates: deps.templates, maxBatchDocuments: config.maxBatchDocuments });
  if (deps.autobatch) await app.register(autobatchRoutes, { autobatch: deps.autobatch, maxBatchDocuments: config.maxBatchDocuments });
  await app.register(eventRoutes, { manager: deps.manager, enabled: config.batchProcessing });
  await app.register(dashboardRoutes);
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
  await app.register(openaiGenerateRoutes, { pool: sync.pool, prefix: '/v1' });
  if (deps.files) await app.register(openaiFileRoutes, { files: deps.files, prefix: '/v1' });
  if (deps.batches) await app.register(openaiBatchRoutes, { batches: deps.batches, prefix: '/v1' });
  if (deps.metrics) await app.register(metricsRoutes, { metrics: deps.metrics });
  return app;
}

/** The OpenAPI description of the API keys (every route but /api/health, /api/version and the docs needs one). */
function keySecurity() {
  return {
    components: {
      securitySchemes: {
        bearer: { type: 'http' as const, scheme: 'bearer' },
        apiKey: { type: 'apiKey' as const, in: 'header', name: 'X-API-Key' },
      },
    },
    security: [{ bearer: [] as string[] }, { apiKey: [] as string[] }] as Record<string, string[]>[],
  };
}

/**
 * Bodies are read as JSON whatever the Content-Type says (Ollama does the same, and
 * `curl -d` sends form encoding by default); parse failures become INVALID_JSON. Parsed with
 * secure-json-parse (the parser fastify's own JSON parser uses, a direct dependency here so
 * the parse error's sentence reaches the client): a `__proto__` or `constructor.prototype`
 * key is refused, never handed to route code (prototype poisoning).
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
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (error) {
      done(new ApiError('INVALID_JSON', `Request body is not valid JSON: ${(error as Error).message}`), undefined);
    }
  });
}
