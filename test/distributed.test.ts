/**
 * The distributed mode with real processes: two `sollol up --redis --workers 0` gateways and
 * two `sollol worker`s as subprocesses against one real Redis, each worker driving its own
 * simulated node (in this process, so its calls can be counted). Every test has its own key
 * prefix; every key under it is deleted at the end.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import type { SimNode } from '../src/sim/server.js';
import type { SimOptions } from '../src/sim/options.js';
import { MODEL, assertAllVectors, call, docs, sentUntilLastOf, startSim, startTestGateway, submit, tempDir, waitFor, waitForStatus } from './helpers.js';
import { scanKeys } from './redisKeys.js';
import { redisSuite, testClient } from './redisServer.js';
import { spawnGateway, spawnWorker, type GatewayProcess, type WorkerProcess } from './subprocess.js';

const suite = await redisSuite();
const { url: redisUrl, skip, client } = suite;
/** Short chunk locks: a killed worker's chunks move on within about 2.5 s. */
const WORKER_ENV = { SOLLOL_CHUNK_LOCK: '2', SOLLOL_HEALTH_INTERVAL: '0.2' };
const GATEWAY_ENV = { SOLLOL_SWEEP_INTERVAL: '0.2', SOLLOL_HEALTH_INTERVAL: '0.2' };

interface Cluster {
  readonly prefix: string;
  readonly nodes: SimNode[];
  readonly gateways: GatewayProcess[];
  readonly workers: WorkerProcess[];
}

/** Two gateways that work no chunks and one worker per simulated node, all on a fresh prefix. */
async function cluster(t: TestContext, sim: Partial<SimOptions>, gatewayFlags: string[] = [], gateways = 2, url = redisUrl): Promise<Cluster> {
  const prefix = suite.prefix('dist');
  const redis = ['--redis', url, '--redis-prefix', prefix];
  const nodes = [await startSim(t, sim), await startSim(t, sim)];
  const workers = await Promise.all(nodes.map((node) => spawnWorker(t, [...redis, '--backend', node.url], WORKER_ENV)));
  const started: GatewayProcess[] = [];
  for (let i = 0; i < gateways; i++) {
    started.push(await spawnGateway(t, [...redis, '--workers', '0', '--backend', nodes[0]!.url, ...gatewayFlags], GATEWAY_ENV));
  }
  // Gateways read the worker registry each second: wait until a submit would run at once.
  const registry = url === redisUrl ? client! : testClient(url);
  await waitFor(async () => {
    const live = await registry.scard(`${prefix}workers`);
    return live >= workers.length ? true : undefined;
  }, 'the workers to register');
  if (registry !== client) registry.disconnect();
  await new Promise((resolve) => setTimeout(resolve, 1200));
  return { prefix, nodes, gateways: started, workers };
}

async function progress(url: string, jobId: string): Promise<{ status: string; progress: { completed_items: number; failed_items: number } }> {
  return (await call(`${url}/api/batch/jobs/${jobId}`)).body;
}

test('a job submitted to one gateway is read, listed and cancelled through the other; cancel stops work on every worker', { skip }, async (t) => {
  const { gateways, nodes, prefix } = await cluster(t, { delayPerCallMs: 40 }, ['--chunk-size', '10']);
  const [g1, g2] = gateways as [GatewayProcess, GatewayProcess];
  const documents = docs(2000, 'cancel');
  const submitted = await submit(g1.url, { model: MODEL, documents, metadata: { via: 'g1' } });
  assert.equal(submitted.status, 200);
  assert.equal(submitted.body.status, 'running');
  const id = submitted.body.job_id as string;

  const running = await waitFor(async () => {
    const s = await progress(g2.url, id);
    return s.status === 'running' && s.progress.completed_items >= 30 ? s : undefined;
  }, 'progress seen through the other gateway');
  assert.equal((running as unknown as { metadata: { via: string } }).metadata.via, 'g1');
  await waitFor(() => (nodes.every((n) => n.stats().embedCalls > 0) ? true : undefined), 'both workers to have calls');
  const listed = (await call(`${g2.url}/api/batch/jobs?status=running`)).body;
  assert.deepEqual(listed.jobs.map((j: { job_id: string }) => j.job_id), [id]);
  assert.equal((await call(`${g2.url}/api/batch/results/${id}`)).body.code, 'JOB_NOT_FINISHED');

  const cancel = await call(`${g2.url}/api/batch/jobs/${id}`, { method: 'DELETE' });
  assert.equal(cancel.status, 200);
  assert.equal(cancel.body.cancelled, true);
  assert.equal((await progress(g1.url, id)).status, 'cancelled', 'the status was written before the answer');

  // Calls in flight on either worker are aborted, and no call starts afterwards.
  await waitFor(() => (nodes.every((n) => n.stats().inFlight === 0) ? true : undefined), 'in-flight calls to end');
  const callsAfter = nodes.reduce((sum, n) => sum + n.stats().embedCalls, 0);
  // Instead of sleeping: a later one-chunk job completing shows the workers moved past the
  // cancelled job; its one call is the only one after the cancel settled.
  const sentinel = await submit(g1.url, { model: MODEL, documents: docs(5, 'sentinel') });
  await waitFor(async () => ((await progress(g1.url, sentinel.body.job_id)).status === 'completed' ? true : undefined), 'a later job to complete');
  assert.equal(nodes.reduce((sum, n) => sum + n.stats().embedCalls, 0), callsAfter + 1, 'no backend call for the cancelled job after the cancel settled');
  assert.ok(nodes.reduce((sum, n) => sum + n.stats().documents, 0) < 2000);

  const results = (await call(`${g1.url}/api/batch/results/${id}`)).body;
  assert.equal(results.status, 'cancelled');
  const done = results.results.filter((r: { embedding: unknown }) => Array.isArray(r.embedding)).length;
  const never = results.results.filter((r: { code?: string }) => r.code === 'CANCELLED').length;
  assert.equal(done, results.completed_items);
  assert.equal(done + never, 2000);
  assert.deepEqual(results.errors, [{ index: null, error: 'Job cancelled by request', code: 'CANCELLED' }]);
  // The job's queued chunks left the queue.
  await waitFor(async () => ((await client!.zcard(`${prefix}bull:chunks:prioritized`)) === 0 ? true : undefined), 'queued chunks to be removed');
  assert.equal((await progress(g2.url, id)).status, 'cancelled', 'final forever');
});

test('kill -9 of a worker mid-job loses nothing: its chunks run again elsewhere, every document once', { skip }, async (t) => {
  const { gateways, nodes, workers } = await cluster(t, { delayPerCallMs: 50 }, ['--chunk-size', '5']);
  const [g1, g2] = gateways as [GatewayProcess, GatewayProcess];
  const [a, b] = nodes as [SimNode, SimNode];
  const documents = docs(600, 'killed');
  const { body } = await submit(g1.url, { model: MODEL, documents });
  await waitFor(() => (a.stats().documents >= 50 && a.stats().inFlight > 0 ? true : undefined), 'worker A to be mid-chunk');
  await workers[0]!.kill9();
  const killedAt = a.stats().documents;

  const done = await waitForStatus(g2.url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 600);
  assert.equal(done.progress.failed_items, 0);
  await assertAllVectors(g2.url, body.job_id, documents);
  assert.ok(killedAt < 600, 'worker A died before the end');
  assert.ok(b.stats().documents + killedAt >= 600, 'worker B did the rest, including A\'s stalled chunks');
});

test('a Redis connection dropped mid-job is survived by reconnecting', { skip }, async (t) => {
  const { gateways, nodes, prefix } = await cluster(t, { delayPerCallMs: 30 }, ['--chunk-size', '5'], 1);
  const documents = docs(400, 'dropped');
  const { body } = await submit(gateways[0]!.url, { model: MODEL, documents });
  await waitFor(() => (nodes.every((n) => n.stats().documents >= 20) ? true : undefined), 'both workers to make progress');
  // Kill every connection of this deployment (gateway, workers, BullMQ's blocking ones, pub/sub).
  const clients = (await client!.client('LIST')) as string;
  const ours = clients.split('\n').filter((line) => line.includes(`name=sollol-`) && line.includes(`@${prefix} `));
  assert.ok(ours.length >= 8, `found ${ours.length} connections of the deployment`);
  for (const line of ours) await client!.client('KILL', 'ID', /id=(\d+)/.exec(line)![1]!);

  const done = await waitForStatus(gateways[0]!.url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 400);
  await assertAllVectors(gateways[0]!.url, body.job_id, documents);
});

test('TTL expiry removes every key of a job, BullMQ entries included', { skip }, async (t) => {
  const { gateways, prefix } = await cluster(t, {}, ['--job-ttl', '1', '--chunk-size', '7'], 1);
  const url = gateways[0]!.url;
  const { body } = await submit(url, { model: MODEL, documents: docs(50, 'ttl') });
  const id = body.job_id as string;
  await waitForStatus(url, id, ['completed']);
  const ofJob = async (): Promise<string[]> => (await scanKeys(client!, prefix)).filter((key) => key.includes(id));
  assert.ok((await client!.pttl(`${prefix}job:${id}`)) > 0, 'the finished job has its record until its TTL, and it expires');
  // BullMQ removes a finished chunk's entry just after the chunk's last write: wait for that.
  const finished = await waitFor(async () => {
    const keys = await ofJob();
    return keys.every((key) => key.startsWith(`${prefix}job:${id}`)) ? keys : undefined;
  }, 'only the job\'s own keys to remain');
  for (const key of finished) {
    const pttl = await client!.pttl(key);
    assert.ok(pttl > 0 || pttl === -2, `${key} expires (PTTL ${pttl})`);
  }

  await waitFor(async () => ((await ofJob()).length === 0 ? true : undefined), 'every key of the job to be gone', 10_000);
  await waitFor(async () => ((await client!.hexists(`${prefix}idx:meta`, id)) === 0 ? true : undefined), 'the sweep to drop its index entries');
  assert.equal((await call(`${url}/api/batch/jobs/${id}`)).status, 404);
  assert.equal((await call(`${url}/api/batch/jobs`)).body.total, 0);
});

/** A private redis-server with an append-only file, so it can be restarted with its data. */
async function privateRedis(t: TestContext): Promise<{ url: string; restart(downMs: number): Promise<void> }> {
  const dir = tempDir(t, 'sollol-redis-');
  const port = await new Promise<number>((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(free));
    });
  });
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], { stdio: 'ignore' });
    const probe = testClient(url);
    probe.on('error', () => {});
    await waitFor(async () => ((await probe.ping().catch(() => undefined)) === 'PONG' ? true : undefined), 'redis-server to start');
    probe.disconnect();
  };
  const stop = async (): Promise<void> => {
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  };
  t.after(stop);
  await start();
  return {
    url,
    restart: async (downMs) => {
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      await start();
    },
  };
}

const noServerBinary = !fs.existsSync('/usr/bin/redis-server') && process.env.CI !== 'true' ? 'redis-server is not installed' : false;

test('a Redis restart mid-job is survived: every process reconnects and the job completes', { skip: skip || noServerBinary }, async (t) => {
  const redis = await privateRedis(t);
  const { gateways, nodes } = await cluster(t, { delayPerCallMs: 30 }, ['--chunk-size', '5'], 1, redis.url);
  const url = gateways[0]!.url;
  const documents = docs(400, 'restart');
  const { body } = await submit(url, { model: MODEL, documents });
  await waitFor(() => (nodes.every((n) => n.stats().documents >= 20) ? true : undefined), 'both workers to make progress');
  await redis.restart(1000);

  const done = await waitForStatus(url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 400);
  await assertAllVectors(url, body.job_id, documents);
});

test('two big jobs share the workers chunk by chunk: a job submitted later interleaves instead of waiting or jumping ahead', { skip }, async (t) => {
  const node = await startSim(t, { delayPerCallMs: 10, serial: true });
  const prefix = suite.prefix('fair');
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10', workers: '1', redis: redisUrl, redisPrefix: prefix });
  const first = await submit(url, { model: MODEL, documents: docs(800, 'first') });
  await waitFor(async () => ((await progress(url, first.body.job_id)).progress.completed_items >= 50 ? true : undefined), 'the first job to be under way');
  const atSecond = node.stats().callSizes.length;
  const second = await submit(url, { model: MODEL, documents: docs(300, 'second') });
  await waitForStatus(url, second.body.job_id, ['completed']);
  // Counted on the node's record of its calls, in order, from the second job's submit up to its
  // own last call: chunk by chunk, the first job was sent about as much as the second meanwhile.
  // FIFO would have sent the first job's rest first; "fewest chunks first" would have sent it
  // next to nothing.
  const { callSizes, callFirstInputs } = node.stats();
  const sent = sentUntilLastOf(callFirstInputs, atSecond, 'second', callSizes);
  assert.equal(sent['second'], 300);
  const beside = sent['first'] ?? 0;
  assert.ok(beside >= 150 && beside <= 450, `the first job was sent ${beside} documents while the second was sent its 300`);
  await call(`${url}/api/batch/jobs/${first.body.job_id}`, { method: 'DELETE' });
});
