/**
 * Wires one gateway process: store, backends and pool, scheduler, job manager, HTTP app.
 * The execution side is chosen by `config.redisUrl`: the embedded SQLite store with the
 * in-process scheduler, or the Redis store with chunks on a BullMQ queue (distributed mode).
 * Start and stop are idempotent and keep their in-flight promise; stop drains in order:
 * stop accepting requests, let chunks in flight finish (bounded), close backends and store.
 */
import { RedisFileStore } from './store/files/redisFiles.js';
import { SqliteFileStore } from './store/files/sqliteFiles.js';
import type { FileStore } from './store/files/types.js';
import { BatchService } from './openaiBatch/batches.js';
import { RedisBatchStore, SqliteBatchStore, type BatchStore } from './openaiBatch/batchStore.js';
import type { FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { createBackend } from './backends/factory.js';
import { BackendPool } from './backends/pool.js';
import type { Config } from './config.js';
import { DistributedScheduler } from './execution/distributedScheduler.js';
import { InProcessJobEvents, type JobEvents } from './execution/jobEvents.js';
import { connectRedis, waitForRedis } from './execution/redisClient.js';
import { RedisJobEvents } from './execution/redisJobEvents.js';
import { WorkersBackend } from './execution/remoteEmbed.js';
import type { EmbeddingBackend } from './backends/types.js';
import { Scheduler } from './execution/scheduler.js';
import type { JobScheduler } from './execution/types.js';
import { buildApp } from './http/app.js';
import type { SharedRateLimit } from './http/rateLimit.js';
import { JobManager, type ModelCatalog } from './jobs/manager.js';
import type { Logger } from './logger.js';
import { GatewayMetrics } from './metrics.js';
import { RedisJobStore } from './store/redis/redisStore.js';
import { openSqliteStore } from './store/sqlite/sqliteStore.js';
import type { JobStore } from './store/types.js';
import type { ControlStore } from './store/control.js';
import { RedisControlStore } from './store/redis/controlStore.js';
import { SqliteControlStore } from './store/sqlite/controlStore.js';
import { openThreadedStore } from './store/sqlite/threadedStore.js';
import { BackgroundTasks } from './jobs/background.js';
import { JobScheduling } from './jobs/scheduling.js';
import { Webhooks } from './jobs/webhooks.js';
import { Templates } from './jobs/templates.js';
import { Autobatch } from './jobs/autobatch.js';
import { embedRunner, generationRunner } from './http/routes/templates.js';
import { ApiError } from './errors.js';

export class SelfReferenceError extends Error {}

export interface Gateway {
  readonly app: FastifyInstance;
  readonly pool: BackendPool;
  readonly manager: JobManager;
  /** The address it listens on, e.g. http://127.0.0.1:11434. */
  readonly url: string;
  stop(): Promise<void>;
}

export async function startGateway(config: Config, logger: PinoLogger): Promise<Gateway> {
  const backends = gatewayBackends(config, logger);
  const metrics = new GatewayMetrics();
  const pool = new BackendPool(backends, {
    observer: metrics,
    onCircuitChange: (url, from, to) => logger.info({ backend: url, from, to }, `circuit breaker ${to}`),
    healthIntervalMs: config.healthIntervalMs,
    selfInstanceId: config.instanceId,
    onHealthChange: (url, healthy, error) =>
      healthy ? logger.info({ backend: url }, 'backend is healthy') : logger.warn({ backend: url, error }, 'backend is unavailable'),
  });
  const { store, events, scheduler, catalog, sharedRateLimit, control, files, batchStore } = await openExecution(config, pool, metrics, logger).catch(async (error: unknown) => {
    await pool.close();
    throw error;
  });
  const manager = new JobManager(store, scheduler, events, catalog, config, logger, control);
  // Job control's timers (scheduled-job promoter, sweeps): one tracked place, bounded stop.
  const background = new BackgroundTasks(logger);
  const secrets = new Map(config.apiKeys.filter((k) => k.webhookSecret !== undefined).map((k) => [k.owner, k.webhookSecret!]));
  const webhooks = new Webhooks(store, control, {
    allowHosts: config.webhookAllowHosts,
    secretFor: (owner) => secrets.get(owner) ?? config.webhookSecret,
    retryForMs: config.webhookRetryForMs,
    retryBaseMs: config.webhookRetryBaseMs,
  }, logger);
  manager.webhooks = webhooks;
  const templates = new Templates(
    control,
    { embed: embedRunner(manager), generate: generationRunner(manager, 'generate', config.maxBatchDocuments), chat: generationRunner(manager, 'chat', config.maxBatchDocuments) },
    (owner, url) => webhooks.check(owner, url),
    logger,
  );
  const autobatch = new Autobatch(control, {
    intervalMs: config.autobatchIntervalMs,
    maxBatchDocuments: config.maxBatchDocuments,
    checkTarget: async (scope, target) => {
      if ('template' in target) {
        const template = await templates.get(scope, target.template);
        // Queued documents are texts: embedded, or the prompts of a generate template's job.
        if (template.jobType === 'chat') throw new ApiError('INVALID_TEMPLATE', `Template '${template.name}' is a chat template; autobatch queues documents, which an embed or generate template takes`);
      } else if (scheduler.modelAvailability(target.model) === 'unknown-model') {
        throw new ApiError('MODEL_NOT_FOUND', `Model '${target.model}' is not served by any backend`);
      }
    },
    submit: async (scope, target, documents, metadata) =>
      'template' in target
        ? (await templates.run(scope, target.template, { documents }, { metadata })).job_id
        : (await manager.submit(scope, { model: target.model, documents, metadata, options: { truncate: true } })).job_id,
  }, logger);
  const batches = new BatchService(batchStore, files, manager, logger, config.maxBatchDocuments);
  let app: FastifyInstance | undefined;
  const closeAll = async (): Promise<void> => {
    webhooks.stop();
    await background.stop();
    manager.stop();
    await batches.stop();
    // Stop dispatching first: no new chunk starts, those in flight get the grace period.
    const schedulerStopped = scheduler.stop();
    // Stop accepting; requests in flight (sync calls, /api/chat streams) get the same grace,
    // then their connections are closed, which aborts their backend calls (clientSignal in
    // http/syncEmbed.ts), so a client or a node that never finishes cannot hold the stop.
    const appClosed = app?.close();
    const cut = setTimeout(() => app?.server.closeAllConnections(), config.stopGraceMs);
    try {
      await Promise.all([appClosed, schedulerStopped]);
    } finally {
      clearTimeout(cut);
    }
    await pool.close();
    await events.close();
    await batchStore.close();
    await files.close();
    await store.close();
  };
  try {
    await pool.start();
    await scheduler.start();
    await manager.start();
    new JobScheduling(store, control, manager).start(background);
    webhooks.start(background);
    templates.start(background);
    autobatch.start(background);
    batches.start();
    metrics.watch({ pool, scheduler, manager });
    app = await buildApp({ manager, pool, scheduler, logger, config, metrics, templates, autobatch, files, batches, ...(sharedRateLimit ? { sharedRateLimit } : {}) });
    await app.listen({ host: config.host, port: config.port });
    await refuseSelf(pool);
    warnUnreachable(pool, logger);
  } catch (error) {
    await closeAll();
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  let stopping: Promise<void> | undefined;
  return { app, pool, manager, url: `http://${host}:${port}`, stop: () => (stopping ??= closeAll()) };
}

interface Execution {
  readonly store: JobStore;
  readonly events: JobEvents;
  readonly scheduler: JobScheduler;
  readonly catalog: ModelCatalog;
  /** Distributed mode: where the rate limit is counted. */
  readonly sharedRateLimit?: SharedRateLimit;
  readonly control: ControlStore;
  /** OpenAI Files API files, beside the jobs in the same mode's store. */
  readonly files: FileStore;
  /** OpenAI Batch API batches, beside the files. */
  readonly batchStore: BatchStore;
}

/** The store, job events and scheduler of the mode `config.redisUrl` selects. */
async function openExecution(config: Config, pool: BackendPool, metrics: GatewayMetrics, logger: Logger): Promise<Execution> {
  if (config.redisUrl === undefined) {
    const { store, control } = await openEmbeddedStore(config, logger);
    // This process is the file's only writer: calls in progress at the last stop are gone.
    const released = await control.releaseDeadReservations();
    if (released > 0) logger.info({ released }, 'released the Idempotency-Key reservations of calls the last run did not finish');
    const events = new InProcessJobEvents();
    const scheduler = new Scheduler(store, pool, events, { ...config, chunkObserver: metrics }, logger);
    return { store, events, scheduler, catalog: pool, control, files: new SqliteFileStore(config.dataDir), batchStore: new SqliteBatchStore(config.dataDir) };
  }
  const url = config.redisUrl;
  const client = connectRedis(url, 'command', logger, 'store', config.redisPrefix);
  const store = new RedisJobStore(client, { prefix: config.redisPrefix, cache: { maxBytes: config.cacheMaxBytes } }, true);
  const events = new RedisJobEvents(url, config.redisPrefix, logger);
  try {
    await waitForRedis(client, url);
    await events.start();
  } catch (error) {
    await Promise.all([events.close(), store.close()]);
    throw error;
  }
  const control = new RedisControlStore(client, store.keys);
  const priorityOf = async (id: string) => (await control.controls([id])).get(id)?.priority;
  const scheduler = new DistributedScheduler(store, pool, events, { ...config, redisUrl: url, chunkObserver: metrics, priorityOf }, logger);
  return { store, events, scheduler, catalog: scheduler, control, sharedRateLimit: { redis: client, prefix: config.redisPrefix }, files: new RedisFileStore(client, config.redisPrefix), batchStore: new RedisBatchStore(client, config.redisPrefix) };
}

/**
 * The embedded store and job control on its file: writes on the store's own thread
 * (threadedStore.ts) unless `--no-store-thread` or `:memory:` (one connection cannot be shared
 * across threads), where both use the one connection on the event loop.
 */
async function openEmbeddedStore(config: Config, logger: Logger): Promise<{ store: JobStore; control: ControlStore }> {
  const cache = { maxBytes: config.cacheMaxBytes };
  if (config.storeThread && config.dataDir !== ':memory:') {
    return openThreadedStore({ dataDir: config.dataDir, cache, onError: (message) => logger.warn(`store: ${message}`) });
  }
  const store = openSqliteStore(config.dataDir, { cache, onError: (message) => logger.warn(`store checkpoint: ${message}`) });
  return { store, control: new SqliteControlStore(store) };
}

/**
 * The gateway's own backends. A front gateway of the distributed mode (`--redis --workers 0`)
 * works no chunks: it answers the sync API through the workers' nodes (remoteEmbed.ts) and
 * never loads the embedded model; remote `--backend` nodes it is given are used beside them.
 */
function gatewayBackends(config: Config, logger: Logger): EmbeddingBackend[] {
  if (config.redisUrl === undefined || config.workers > 0) return config.backends.map((spec) => createBackend(spec, config));
  const own = config.backends.filter((spec) => spec.kind !== 'embedded').map((spec) => createBackend(spec, config));
  return [...own, new WorkersBackend({ ...config, redisUrl: config.redisUrl }, logger)];
}

/** One warning line per backend the first probe could not reach (the pool only logs changes of health). */
function warnUnreachable(pool: BackendPool, logger: Logger): void {
  for (const node of pool.snapshot()) {
    if (node.healthy) continue;
    logger.warn({ backend: node.url }, `backend ${node.url} is unreachable at start (${node.last_error ?? 'no answer'}); jobs for its models wait until it answers`);
  }
}

/** The default port is Ollama's: refuse a backend that turns out to be this very gateway. */
async function refuseSelf(pool: BackendPool): Promise<void> {
  await pool.probeAll();
  const self = pool.selfReferences()[0];
  if (self !== undefined) {
    throw new SelfReferenceError(`--backend ${self} is this gateway itself; point --backend at an Ollama node or another port`);
  }
}
