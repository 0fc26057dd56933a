/**
 * Redis connections of the distributed mode, all made here so that every one reconnects the
 * same way: a Redis restart or a dropped connection is retried (backoff capped at 2 s) for
 * as long as it takes, never turned into a crash. Commands issued while disconnected wait in
 * ioredis' offline queue and run on reconnect.
 *
 * Two kinds: `command` connections fail a command after a few reconnect attempts, so an HTTP
 * request gets an error rather than hanging; `worker` connections (BullMQ workers, pub/sub)
 * wait forever (`maxRetriesPerRequest: null`, which BullMQ requires for blocking commands).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';

const MAX_BACKOFF_MS = 2000;

export type ConnectionKind = 'command' | 'worker';

export function redisOptions(kind: ConnectionKind): RedisOptions {
  return {
    maxRetriesPerRequest: kind === 'worker' ? null : 20,
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
  const client = new Redis(url, { ...redisOptions(kind), connectionName: name });
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
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(`cannot reach Redis at ${safeUrl(url)} (no answer within ${timeoutMs / 1000} s); check --redis`)), timeoutMs);
  });
  try {
    await Promise.race([client.ping(), timeout]);
  } finally {
    clearTimeout(timer);
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
