/**
 * Wires one `sollol worker` process: its own backends and pool, the Redis store, job events
 * over Redis pub/sub, a ChunkWorker taking chunks from the queue, and the interactive lane
 * (remoteEmbed.ts) answering the sync API for front gateways. The gateways answer clients;
 * with `--port P` a worker also serves `/api/health` and `/metrics` for itself (chunks,
 * documents, per-node latency and errors). Stop drains like the gateway's: stop taking
 * chunks, let those in progress finish (bounded), then close pool, events and store.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger as PinoLogger } from 'pino';
import { createBackend } from './backends/factory.js';
import { BackendPool } from './backends/pool.js';
import type { Config } from './config.js';
import { ChunkWorker } from './execution/chunkWorker.js';
import { connectRedis, waitForRedis } from './execution/redisClient.js';
import { RedisJobEvents } from './execution/redisJobEvents.js';
import { InteractiveResponder } from './execution/remoteEmbed.js';
import { GatewayMetrics } from './metrics.js';
import { RedisJobStore } from './store/redis/redisStore.js';
import { VERSION } from './version.js';

export interface WorkerProcess {
  readonly instanceId: string;
  /** `http://127.0.0.1:P` when started with a port. */
  readonly url: string | undefined;
  stop(): Promise<void>;
}

export interface WorkerHttp {
  readonly host: string;
  readonly port: number;
}

/** How long stop() lets chunks in progress finish before handing them back to the queue. */
const STOP_GRACE_MS = 5000;

export async function startWorker(config: Config & { readonly redisUrl: string }, logger: PinoLogger, http?: WorkerHttp): Promise<WorkerProcess> {
  const metrics = new GatewayMetrics({ storeWide: false });
  const pool = new BackendPool(
    config.backends.map((spec) => createBackend(spec, config)),
    {
      observer: metrics,
      healthIntervalMs: config.healthIntervalMs,
      selfInstanceId: config.instanceId,
      onCircuitChange: (url, from, to) => logger.info({ backend: url, from, to }, `circuit breaker ${to}`),
      onHealthChange: (url, healthy, error) =>
        healthy ? logger.info({ backend: url }, 'backend is healthy') : logger.warn({ backend: url, error }, 'backend is unavailable'),
    },
  );
  const client = connectRedis(config.redisUrl, 'command', logger, 'store', config.redisPrefix);
  const store = new RedisJobStore(client, { prefix: config.redisPrefix, cache: { maxBytes: config.cacheMaxBytes } }, true);
  const events = new RedisJobEvents(config.redisUrl, config.redisPrefix, logger);
  const worker = new ChunkWorker(store, pool, events, { ...config, concurrency: config.workers, chunkObserver: metrics, interactive: true }, logger);
  const responder = new InteractiveResponder(pool, { ...config, redisUrl: config.redisUrl }, logger);
  let app: FastifyInstance | undefined;
  const closeAll = async (): Promise<void> => {
    await app?.close();
    await responder.stop();
    await worker.stop(STOP_GRACE_MS);
    await pool.close();
    await events.close();
    await store.close();
  };
  let url: string | undefined;
  try {
    await waitForRedis(client, config.redisUrl);
    await events.start();
    await pool.start();
    await worker.start();
    await responder.start();
    metrics.watch({ pool, scheduler: { load: () => ({ chunksInFlight: worker.inFlight, queuedJobs: 0, workers: config.workers }) } });
    if (http) {
      app = workerApp(config, pool, worker, metrics, logger);
      await app.listen({ host: http.host, port: http.port });
      const address = app.server.address();
      const port = typeof address === 'object' && address ? address.port : http.port;
      url = `http://${http.host.includes(':') ? `[${http.host}]` : http.host}:${port}`;
    }
  } catch (error) {
    await closeAll();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return { instanceId: config.instanceId, url, stop: () => (stopping ??= closeAll()) };
}

/** /api/health and /metrics of one worker; nothing else (clients talk to the gateways). */
function workerApp(config: Config, pool: BackendPool, worker: ChunkWorker, metrics: GatewayMetrics, logger: PinoLogger): FastifyInstance {
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true });
  app.get('/api/health', async () => {
    const nodes = pool.snapshot();
    const degraded = worker.degradedReasons();
    return {
      status: degraded.length > 0 ? 'degraded' : 'ok',
      ...(degraded.length > 0 ? { degraded } : {}),
      service: 'sollol-worker',
      version: VERSION,
      instance_id: config.instanceId,
      workers: config.workers,
      chunks_in_flight: worker.inFlight,
      backends: { healthy: nodes.filter((n) => n.healthy).length, total: nodes.length },
    };
  });
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.type(contentType).send(body);
  });
  return app;
}
