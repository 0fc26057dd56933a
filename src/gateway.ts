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
import { Scheduler } from './execution/scheduler.js';
import type { JobScheduler } from './execution/types.js';
import { buildApp } from './http/app.js';
import { JobManager, type ModelCatalog } from './jobs/manager.js';
import type { Logger } from './logger.js';
import { GatewayMetrics } from './metrics.js';
import { RedisJobStore } from './store/redis/redisStore.js';
import { openSqliteStore } from './store/sqlite/sqliteStore.js';
import type { JobStore } from './store/types.js';

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
  const backends = config.backends.map((spec) => createBackend(spec, config));
  const metrics = new GatewayMetrics();
  const pool = new BackendPool(backends, {
    observer: metrics,
    onCircuitChange: (url, from, to) => logger.info({ backend: url, from, to }, `circuit breaker ${to}`),
    healthIntervalMs: config.healthIntervalMs,
    selfInstanceId: config.instanceId,
    onHealthChange: (url, healthy, error) =>
      healthy ? logger.info({ backend: url }, 'backend is healthy') : logger.warn({ backend: url, error }, 'backend is unavailable'),
  });
  const { store, events, scheduler, catalog, files, batchStore } = await openExecution(config, pool, metrics, logger).catch(async (error: unknown) => {
    await pool.close();
    throw error;
  });
  const manager = new JobManager(store, scheduler, events, catalog, config, logger);
  const batches = new BatchService(batchStore, files, manager, logger, config.maxBatchDocuments);
  let app: FastifyInstance | undefined;
  const closeAll = async (): Promise<void> => {
    manager.stop();
    await app?.close();
    await batches.stop();
    await scheduler.stop();
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
    batches.start();
    metrics.watch({ pool, scheduler, manager });
    app = await buildApp({ manager, pool, scheduler, logger, config, metrics, files, batches });
    await app.listen({ host: config.host, port: config.port });
    await refuseSelf(pool);
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
  /** OpenAI Files API files, beside the jobs in the same mode's store. */
  readonly files: FileStore;
  /** OpenAI Batch API batches, beside the files. */
  readonly batchStore: BatchStore;
}

/** The store, job events and scheduler of the mode `config.redisUrl` selects. */
async function openExecution(config: Config, pool: BackendPool, metrics: GatewayMetrics, logger: Logger): Promise<Execution> {
  if (config.redisUrl === undefined) {
    const store = openSqliteStore(config.dataDir, {
      cache: { maxBytes: config.cacheMaxBytes },
      onError: (message) => logger.warn(`store checkpoint: ${message}`),
    });
    const events = new InProcessJobEvents();
    const scheduler = new Scheduler(store, pool, events, { ...config, chunkObserver: metrics }, logger);
    return { store, events, scheduler, catalog: pool, files: new SqliteFileStore(config.dataDir), batchStore: new SqliteBatchStore(config.dataDir) };
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
  const scheduler = new DistributedScheduler(store, pool, events, { ...config, redisUrl: url, chunkObserver: metrics }, logger);
  return { store, events, scheduler, catalog: scheduler, files: new RedisFileStore(client, config.redisPrefix), batchStore: new RedisBatchStore(client, config.redisPrefix) };
}

/** The default port is Ollama's: refuse a backend that turns out to be this very gateway. */
async function refuseSelf(pool: BackendPool): Promise<void> {
  await pool.probeAll();
  const self = pool.selfReferences()[0];
  if (self !== undefined) {
    throw new SelfReferenceError(`--backend ${self} is this gateway itself; point --backend at an Ollama node or another port`);
  }
}
