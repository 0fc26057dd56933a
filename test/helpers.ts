/**
 * Test harness: a real gateway on a loopback port with a real SQLite file in a temp
 * directory, in front of real simulated Ollama nodes. Everything is closed in `t.after`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import { resolveConfig, type RawOptions } from '../src/config.js';
import { startGateway, type Gateway } from '../src/gateway.js';
import { silentLogger } from '../src/logger.js';
import { simVector, startSimNode, type SimNode } from '../src/sim/index.js';
import type { SimOptions } from '../src/sim/options.js';

export const MODEL = 'nomic-embed-text';

/** The directories tempDir made in this process (one test file), removed when it exits. */
const tempDirs: string[] = [];
process.once('exit', () => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * A fresh directory for the test `_t`, removed when this test file's process exits: a test's
 * `t.after` hooks run in the order they were registered, so a store or gateway opened in the
 * directory after this call is closed only after a removal hooked here would have run (its
 * checkpoint thread or WAL files could then still be written: ENOTEMPTY, seen under load).
 */
export function tempDir(_t: TestContext, prefix = 'sollol-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export async function startSim(t: TestContext, options: Partial<SimOptions> = {}): Promise<SimNode> {
  const node = await startSimNode(options);
  t.after(() => node.close());
  return node;
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly dataDir: string;
  stop(): Promise<void>;
}

/**
 * Set by test/distributed-contract-*.test.ts: every gateway of that process runs on Redis, with
 * one key prefix per data directory (a gateway restarted on the same directory finds its jobs).
 */
let onRedis: { url: string; prefix: string; byDataDir: Map<string, string> } | undefined;

/** Runs every later `startTestGateway` in the distributed mode, under prefixes `<prefix><n>:`. */
/** Whether this process's test gateways run in the distributed mode (distributed-contract-*.test.ts). */
export function gatewaysOnRedis(): boolean {
  return onRedis !== undefined;
}

export function runGatewaysOnRedis(url: string, prefix: string): void {
  onRedis = { url, prefix, byDataDir: new Map() };
}

function redisFlagsFor(dataDir: string): RawOptions {
  if (!onRedis) return {};
  const { byDataDir } = onRedis;
  if (!byDataDir.has(dataDir)) byDataDir.set(dataDir, `${onRedis.prefix}${byDataDir.size + 1}:`);
  return { redis: onRedis.url, redisPrefix: byDataDir.get(dataDir)! };
}

/** A gateway on an ephemeral port; `env` stands in for the process environment. */
export async function startTestGateway(
  t: TestContext,
  flags: RawOptions = {},
  env: Record<string, string> = {},
): Promise<TestGateway> {
  // An own directory is removed after the gateway stopped (hooks run in registration order).
  const ownDir = flags.dataDir === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-test-')) : undefined;
  const dataDir = flags.dataDir ?? ownDir!;
  const removeOwnDir = (): void => {
    if (ownDir !== undefined) fs.rmSync(ownDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  };
  const redis = flags.redis === undefined ? redisFlagsFor(dataDir) : {};
  const config = resolveConfig({ port: '0', ...redis, ...flags, dataDir }, { SOLLOL_HEALTH_INTERVAL: '0.2', SOLLOL_SWEEP_INTERVAL: '0.2', ...env });
  const gateway = await startGateway(config, silentLogger()).catch((error: unknown) => {
    removeOwnDir();
    throw error;
  });
  t.after(async () => {
    await gateway.stop();
    removeOwnDir();
  });
  return { gateway, url: gateway.url, dataDir, stop: () => gateway.stop() };
}

export interface JsonAnswer<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export async function call<T = any>(url: string, init: { method?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {}): Promise<JsonAnswer<T>> {
  const hasBody = init.body !== undefined || init.rawBody !== undefined;
  const response = await fetch(url, {
    method: init.method ?? (hasBody ? 'POST' : 'GET'),
    headers: { ...(hasBody ? { 'content-type': 'application/json' } : {}), ...init.headers },
    body: init.rawBody ?? (init.body === undefined ? undefined : JSON.stringify(init.body)),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // leave as text
  }
  return { status: response.status, body: body as T, headers: response.headers };
}

export async function submit(base: string, body: unknown): Promise<JsonAnswer> {
  return call(`${base}/api/batch/embed`, { body });
}

/** Polls until `check` returns a value (not undefined); fails after `timeoutMs` as a bound, not a measurement. */
export async function waitFor<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function waitForStatus(base: string, jobId: string, statuses: string[]): Promise<any> {
  return waitFor(async () => {
    const answer = await call(`${base}/api/batch/jobs/${jobId}`);
    return statuses.includes(answer.body.status) ? answer.body : undefined;
  }, `job ${jobId} to reach ${statuses.join('/')}`);
}

/**
 * What a simulated node was sent, in its own order (its stats' call log): from entry `from` up
 * to and including the last entry of the job whose texts start with `last`, the count per job,
 * a job being named by its texts' first word (`docs(n, prefix)`, prompts `"low 3"`). `sizes`
 * weighs each entry (documents per embed call); without it each counts one (a generation).
 * Independent of timing: however late a test sees that job finish, the count stops at its last call.
 */
export function sentUntilLastOf(texts: readonly string[], from: number, last: string, sizes?: readonly number[]): Record<string, number> {
  assert.ok(texts.length < 1000, "every call is still in the node's record (it keeps the last 1000)");
  const end = texts.findLastIndex((text) => text.startsWith(`${last} `));
  assert.ok(end >= from, `the node was sent ${last}'s items after entry ${from}`);
  const counts: Record<string, number> = {};
  for (let i = from; i <= end; i++) {
    const job = texts[i]!.split(' ')[0]!;
    counts[job] = (counts[job] ?? 0) + (sizes ? sizes[i]! : 1);
  }
  return counts;
}

export function docs(n: number, prefix = 'document'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix} ${i}: the quick brown fox jumps over the lazy dog`);
}

/**
 * A finished job's results hold no error and, for every document, exactly the simulated
 * node's vector for its text (compared as float32: results print the shortest float32 form).
 */
export async function assertAllVectors(base: string, jobId: string, documents: readonly string[], dims = 768): Promise<void> {
  const results = (await call(`${base}/api/batch/results/${jobId}`)).body;
  assert.deepEqual(results.errors, []);
  assert.equal(results.results.length, documents.length);
  documents.forEach((text, i) => {
    const got = (results.results[i].embedding as number[]).map(Math.fround);
    assert.deepEqual(got, Array.from(simVector(MODEL, text, dims)), `vector ${i}`);
  });
}

/** A test only the embedded mode runs (not the Redis pass of distributed-contract-*.test.ts). */
export function embeddedOnly(name: string, fn: (t: TestContext) => Promise<void>): void {
  if (!gatewaysOnRedis()) test(name, fn);
}

/** Another connection holding the write lock until `release`. */
export function lockWrites(t: TestContext, dir: string): { release(): void } {
  const locker = new Database(path.join(dir, 'sollol.db'));
  locker.exec('BEGIN IMMEDIATE');
  const release = (): void => {
    if (locker.inTransaction) locker.exec('ROLLBACK');
    if (locker.open) locker.close();
  };
  t.after(release);
  return { release };
}

/** A promise and whether it has settled yet. */
export function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let settled = false;
  promise.then(() => (settled = true), () => (settled = true));
  return { promise, settled: () => settled };
}

/** One node as GET /api/stats shows it. */
export interface NodeView {
  url: string;
  errors: number;
  circuit: string;
  consecutive_failures: number;
  in_flight: number;
  max_in_flight: number;
}

/** The node at `nodeUrl` in the gateway's /api/stats. */
export async function nodeView(url: string, nodeUrl: string): Promise<NodeView> {
  const stats = (await call(`${url}/api/stats`)).body as { backends: NodeView[] };
  return stats.backends.find((n) => n.url === nodeUrl)!;
}
