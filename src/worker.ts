/**
 * Wires one `sollol worker` process: its own backends and pool, the Redis store, job events
 * over Redis pub/sub, and a ChunkWorker taking chunks from the queue. No HTTP server: the
 * gateways answer clients; a worker only embeds. Stop drains like the gateway's: stop taking
 * chunks, let those in progress finish (bounded), then close pool, events and store.
 */
import type { Logger as PinoLogger } from 'pino';
import { createBackend } from './backends/factory.js';
import { BackendPool } from './backends/pool.js';
import type { Config } from './config.js';
import { ChunkWorker } from './execution/chunkWorker.js';
import { connectRedis, waitForRedis } from './execution/redisClient.js';
import { RedisJobEvents } from './execution/redisJobEvents.js';
import { RedisJobStore } from './store/redis/redisStore.js';

export interface WorkerProcess {
  readonly instanceId: string;
  stop(): Promise<void>;
}

/** How long stop() lets chunks in progress finish before handing them back to the queue. */
const STOP_GRACE_MS = 5000;

export async function startWorker(config: Config & { readonly redisUrl: string }, logger: PinoLogger): Promise<WorkerProcess> {
  const pool = new BackendPool(
    config.backends.map((spec) => createBackend(spec, config)),
    {
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
  const worker = new ChunkWorker(store, pool, events, { ...config, concurrency: config.workers }, logger);
  const closeAll = async (): Promise<void> => {
    await worker.stop(STOP_GRACE_MS);
    await pool.close();
    await events.close();
    await store.close();
  };
  try {
    await waitForRedis(client, config.redisUrl);
    await events.start();
    await pool.start();
    await worker.start();
  } catch (error) {
    await closeAll();
    throw error;
  }
  let stopping: Promise<void> | undefined;
  return { instanceId: config.instanceId, stop: () => (stopping ??= closeAll()) };
}
