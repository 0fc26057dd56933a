/**
 * A real Redis for tests: SOLLOL_TEST_REDIS_URL or redis://127.0.0.1:6379 when one answers;
 * otherwise Debian's redis-server started on a free loopback port (and stopped by `stop`).
 * With CI=true a missing Redis is an error, never a skip; outside CI the tests may skip,
 * with a message, only when redis-server is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { after } from 'node:test';
import { Redis } from 'ioredis';
import { deletePrefix, uniquePrefix } from './redisKeys.js';
import { freePort } from './ports.js';

export interface TestRedis {
  readonly url: string;
  stop(): Promise<void>;
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';
const REDIS_SERVER = '/usr/bin/redis-server';

/** A Redis to test against, or `{ skip }` (only outside CI, only without redis-server). */
export async function testRedis(): Promise<TestRedis | { skip: string }> {
  const configured = process.env.SOLLOL_TEST_REDIS_URL;
  const url = configured ?? DEFAULT_URL;
  if (await answers(url)) return { url, stop: async () => {} };
  if (configured) throw new Error(`SOLLOL_TEST_REDIS_URL=${configured} does not answer PING`);
  if (fs.existsSync(REDIS_SERVER)) return startRedisServer();
  const why = `no Redis answers on ${DEFAULT_URL} and ${REDIS_SERVER} is not installed`;
  if (process.env.CI === 'true') throw new Error(`CI=true: the Redis tests must run, but ${why}`);
  return { skip: `${why} (apt-get install redis-server, or set SOLLOL_TEST_REDIS_URL)` };
}

/** A client for tests: fails fast instead of retrying. */
export function testClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000 });
}

/** The Redis of one test file: `skip` for its tests, a `client`, and `prefix()` for keys deleted at the end. */
export interface RedisSuite {
  /** The Redis URL ('' when skipped). */
  readonly url: string;
  readonly skip: string | false;
  /** A client for assertions (undefined when skipped). */
  readonly client: Redis | undefined;
  /** A fresh key prefix (see uniquePrefix) whose keys are deleted after the file's tests. */
  prefix(label?: string): string;
}

/** testRedis() plus the file's cleanup: an `after` hook deletes every prefix() handed out, disconnects and stops the server. */
export async function redisSuite(): Promise<RedisSuite> {
  const server = await testRedis();
  const skip = 'skip' in server ? server.skip : false;
  const client = 'skip' in server ? undefined : testClient(server.url);
  const prefixes: string[] = [];
  after(async () => {
    if (!client || 'skip' in server) return;
    for (const prefix of prefixes) await deletePrefix(client, prefix);
    client.disconnect();
    await server.stop();
  });
  return {
    url: 'skip' in server ? '' : server.url,
    skip,
    client,
    prefix(label) {
      const prefix = uniquePrefix(label);
      prefixes.push(prefix);
      return prefix;
    },
  };
}

async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function startRedisServer(): Promise<TestRedis> {
  const port = await freePort();
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await answers(url))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${REDIS_SERVER} did not start on port ${port}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export interface RedisServerOptions {
  /** Append-only file with fsync on every write, in `dir` (a restart keeps the data); off: a restart loses everything. */
  readonly aof?: boolean;
  /** Data directory (required with `aof`). */
  readonly dir?: string;
  /** Extra redis-server arguments, e.g. ['--cluster-enabled', 'yes']. */
  readonly args?: readonly string[];
  /** A fixed port (a restart keeps it); default a free one. */
  readonly port?: number;
}

/**
 * A redis-server the test owns, for outage tests: `stop` (SIGTERM, or SIGKILL with `hard`),
 * `pause` (SIGSTOP: the sockets stay open, nothing answers), `resume` (SIGCONT), `start` again on
 * the same port. Only the process this object started is ever signalled, by its PID.
 */
export class RedisServerProcess {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number, private readonly options: RedisServerOptions) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServerProcess> {
    const server = new RedisServerProcess(options.port ?? (await freePort()), options);
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) return;
    const { aof = false, dir, args = [] } = this.options;
    const argv = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', aof ? 'yes' : 'no'];
    if (aof) argv.push('--appendfsync', 'always');
    if (dir) argv.push('--dir', dir);
    argv.push(...args);
    const child = spawn(REDIS_SERVER, argv, { stdio: 'ignore' });
    this.child = child;
    const deadline = Date.now() + 10_000;
    while (!(await answers(this.url))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${REDIS_SERVER} did not start on port ${this.port}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Ends the server (SIGTERM, or SIGKILL: no last write) and waits for its exit. */
  async stop(hard = false): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    child.kill(hard ? 'SIGKILL' : 'SIGTERM');
    await exited;
  }

  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }
}
