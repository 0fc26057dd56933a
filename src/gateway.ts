/**
 * Wires one gateway process: store, backends and pool, scheduler, job manager, HTTP app.
 * Start and stop are idempotent and keep their in-flight promise; stop drains in order:
 * stop accepting requests, let chunks in flight finish (bounded), close backends and store.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { createBackend } from './backends/factory.js';
import { BackendPool } from './backends/pool.js';
import type { Config } from './config.js';
import { InProcessJobEvents } from './execution/jobEvents.js';
import { Scheduler } from './execution/scheduler.js';
import { buildApp } from './http/app.js';
import { JobManager } from './jobs/manager.js';
import { GatewayMetrics } from './metrics.js';
import { openSqliteStore } from './store/sqlite/sqliteStore.js';

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
  const store = openSqliteStore(config.dataDir, {
    cache: { maxBytes: config.cacheMaxBytes },
    onError: (message) => logger.warn(`store checkpoint: ${message}`),
  });
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
  const events = new InProcessJobEvents();
  const scheduler = new Scheduler(store, pool, events, { ...config, chunkObserver: metrics }, logger);
  const manager = new JobManager(store, scheduler, events, pool, config, logger);
  let app: FastifyInstance | undefined;
  const closeAll = async (): Promise<void> => {
    manager.stop();
    await app?.close();
    await scheduler.stop();
    await pool.close();
    await events.close();
    await store.close();
  };
  try {
    await pool.start();
    scheduler.start();
    await manager.start();
    metrics.watch({ pool, scheduler, manager });
    app = await buildApp({ manager, pool, scheduler, logger, config, metrics });
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

/** The default port is Ollama's: refuse a backend that turns out to be this very gateway. */
async function refuseSelf(pool: BackendPool): Promise<void> {
  await pool.probeAll();
  const self = pool.selfReferences()[0];
  if (self !== undefined) {
    throw new SelfReferenceError(`--backend ${self} is this gateway itself; point --backend at an Ollama node or another port`);
  }
}
