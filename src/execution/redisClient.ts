/**
 * Redis connections of the distributed mode, all made here so that every one reconnects the
 * same way: a Redis restart or a dropped connection is retried (backoff capped at 2 s) for
 * as long as it takes, never turned into a crash. Commands issued while disconnected wait in
 * ioredis' offline queue and run on reconnect.
 *
 * Two kinds: `command` connections fail a command after one reconnect attempt, or after
 * `SOLLOL_REDIS_COMMAND_TIMEOUT` seconds without an answer (a Redis stopped with SIGSTOP keeps
 * its sockets open), so an HTTP request gets a 503 STORE_UNAVAILABLE rather than hanging;
 * `worker` connections (BullMQ workers, pub/sub) wait forever (`maxRetriesPerRequest: null`,
 * which BullMQ requires for blocking commands). What survives which outage: the README's
 * distributed section ("What survives what").
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';

const MAX_BACKOFF_MS = 2000;
/** @defaultValue 10 s; `SOLLOL_REDIS_COMMAND_TIMEOUT` (seconds) overrides it (the outage tests use a short one). */
const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

export type ConnectionKind = 'command' | 'worker';

/** How long a command connection waits for an answer before the command fails. */
export function commandTimeoutMs(): number {
  const raw = Number(process.env.SOLLOL_REDIS_COMMAND_TIMEOUT);
  return Number.isFinite(raw) && raw > 0 ? Math.round(raw * 1000) : DEFAULT_COMMAND_TIMEOUT_MS;
}

export function redisOptions(kind: ConnectionKind): RedisOptions {
  return {
    maxRetriesPerRequest: kind === 'worker' ? null : 1,
    ...(kind === 'command' ? { commandTimeout: commandTimeoutMs() } : {}),
    enableReadyCheck: true,
    retryStrategy: (times) => Math.min(100 * times, MAX_BACKOFF_MS),
    // READONLY after a failover to a replica: reconnect, the new primary takes the writes.
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
}

/**
 * A connection that logs its trouble once per outage instead of throwing: ioredis emits
 * 'error' on every failed reconnect, and an unhandled 'error' event would end the process.
 * Named `sollol-<role>@<prefix>` (CLIENT LIST shows which deployment and part holds it).
 */
export function connectRedis(url: string, kind: ConnectionKind, log: Logger, role: string, prefix: string): Redis {
  const name = `sollol-${role}@${prefix}`;
  const client = isClusterUrl(url) ? clusterClient(url, kind, name) : new Redis(url, { ...redisOptions(kind), connectionName: name });
  let down = false;
  client.on('error', (error: Error) => {
    if (down) return;
    down = true;
    log.warn({ redis: name, err: error.message }, 'Redis connection lost; reconnecting');
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    log.info({ redis: name }, 'Redis connection restored');
  });
  return client;
}

/** `redis://host:port/?cluster=true`: a Redis Cluster, reached through any of its nodes. */
export function isClusterUrl(url: string): boolean {
  try {
    const value = new URL(url).searchParams.get('cluster');
    return value === 'true' || value === '1' || value === 'yes';
  } catch {
    return false;
  }
}

/**
 * An ioredis Cluster client, typed as the single-node client: the store, BullMQ and the
 * registry use only commands a Cluster routes by key (every key of a deployment shares the
 * prefix's hash tag, keys.ts), so one type serves both.
 */
function clusterClient(url: string, kind: ConnectionKind, name: string): Redis {
  const parsed = new URL(url);
  const node = { host: parsed.hostname.replace(/^\[|\]$/g, ''), port: Number(parsed.port || 6379) };
  const auth = {
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  const { retryStrategy, ...perNode } = redisOptions(kind);
  const cluster = new Cluster([node], {
    redisOptions: { ...perNode, ...auth, connectionName: name },
    clusterRetryStrategy: retryStrategy as (times: number) => number,
    enableReadyCheck: true,
  });
  return cluster as unknown as Redis;
}

/** Closes a connection: QUIT when it is up, otherwise drop it (QUIT would wait for a reconnect). */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  await client.quit().catch(() => client.disconnect());
}

export class RedisUnavailableError extends Error {}

/** Resolves once the connection answers PING; a clear error after `timeoutMs` (startup fails fast). */
export async function waitForRedis(client: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const left = deadline - Date.now();
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, left))));
    try {
      // A command connection fails a PING after one reconnect attempt: ask again until the deadline.
      const answer = await Promise.race([client.ping().catch(() => 'failed'), timeout]);
      if (answer === 'PONG') return;
    } finally {
      clearTimeout(timer);
    }
    if (Date.now() >= deadline) {
      throw new RedisUnavailableError(`cannot reach Redis at ${safeUrl(url)} (no answer within ${timeoutMs / 1000} s); check --redis`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The URL without its password, for messages. */
export function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '<invalid URL>';
  }
}
