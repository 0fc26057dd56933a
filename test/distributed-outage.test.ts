/**
 * Redis outages in the distributed mode (issue 11 item 1): a gateway and a worker (subprocesses)
 * on a redis-server this test owns, which is stopped, paused with SIGSTOP and restarted mid-job.
 * Both processes stay up; while Redis is away the Batch API answers 503 STORE_UNAVAILABLE with
 * Retry-After and /api/health says degraded; afterwards the job completes with every vector once.
 * Outages here last a few seconds (short command timeouts by env); the 30 s figures are the
 * README's, the mechanism is the same.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test, type TestContext } from 'node:test';
import { MODEL, assertAllVectors, call, docs, startSim, submit, tempDir, waitFor, waitForStatus } from './helpers.js';
import { uniquePrefix } from './redisKeys.js';
import { RedisServerProcess, testClient } from './redisServer.js';
import { spawnGateway, spawnWorker, type GatewayProcess, type WorkerProcess } from './subprocess.js';

const skip = fs.existsSync('/usr/bin/redis-server') ? false : 'redis-server is not installed';
const ENV = {
  SOLLOL_CHUNK_LOCK: '2',
  SOLLOL_HEALTH_INTERVAL: '0.2',
  SOLLOL_SWEEP_INTERVAL: '0.2',
  SOLLOL_REDIS_COMMAND_TIMEOUT: '1',
};

interface Deployment {
  readonly redis: RedisServerProcess;
  readonly gateway: GatewayProcess;
  readonly worker: WorkerProcess;
}

async function deployment(t: TestContext, aof: boolean, delayPerCallMs = 20): Promise<Deployment> {
  const redis = await RedisServerProcess.start({ aof, dir: tempDir(t, 'sollol-redis-') });
  t.after(() => redis.stop(true));
  const prefix = uniquePrefix('outage');
  const flags = ['--redis', redis.url, '--redis-prefix', prefix];
  const node = await startSim(t, { delayPerCallMs });
  const worker = await spawnWorker(t, [...flags, '--backend', node.url], ENV);
  const gateway = await spawnGateway(t, [...flags, '--workers', '0', '--backend', node.url, '--chunk-size', '5'], ENV);
  const probe = testClient(redis.url);
  await waitFor(async () => ((await probe.scard(`${prefix}workers`).catch(() => 0)) >= 1 ? true : undefined), 'the worker to register');
  probe.disconnect();
  await waitFor(async () => ((await submit(gateway.url, { model: MODEL, documents: ['warm up'] })).body.status === 'running' ? true : undefined), 'the gateway to see the worker');
  return { redis, gateway, worker };
}

function alive(process: { child: { exitCode: number | null; signalCode: string | null } }): boolean {
  return process.child.exitCode === null && process.child.signalCode === null;
}

/** While Redis is away: the Batch API answers 503 STORE_UNAVAILABLE with Retry-After; health is degraded. */
async function assertUnavailable(gateway: GatewayProcess): Promise<void> {
  const refused = await waitFor(async () => {
    const answer = await call(`${gateway.url}/api/batch/jobs`);
    return answer.status === 503 ? answer : undefined;
  }, 'the Batch API to answer 503');
  assert.equal(refused.body.code, 'STORE_UNAVAILABLE');
  assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After is set');
  const submitted = await submit(gateway.url, { model: MODEL, documents: ['during the outage'] });
  assert.equal(submitted.status, 503);
  assert.equal(submitted.body.code, 'STORE_UNAVAILABLE');
  const health = await waitFor(async () => {
    const answer = await call(`${gateway.url}/api/health`);
    return answer.body.status === 'degraded' ? answer : undefined;
  }, 'health to say degraded');
  assert.equal(health.status, 200);
  assert.match(String(health.body.reasons), /Redis/);
}

for (const outage of ['stop', 'sigstop'] as const) {
  test(`a Redis ${outage === 'stop' ? 'stop and restart (AOF on)' : 'SIGSTOP'} mid-job: gateway and worker stay up, 503 meanwhile, the job completes with every vector once`, { skip }, async (t) => {
    const { redis, gateway, worker } = await deployment(t, true);
    const documents = docs(300, outage);
    const { body } = await submit(gateway.url, { model: MODEL, documents });
    assert.equal(body.status, 'running');
    await waitFor(async () => ((await call(`${gateway.url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 20 ? true : undefined), 'progress');

    if (outage === 'stop') await redis.stop();
    else redis.pause();
    await assertUnavailable(gateway);
    // Long enough for every timer of both processes to have met the outage a few times.
    const downSince = Date.now();
    await waitFor(() => (Date.now() - downSince >= 3000 ? true : undefined), 'the outage to last 3 s');
    assert.ok(alive(gateway) && alive(worker), 'both processes are up during the outage');
    if (outage === 'stop') await redis.start();
    else redis.resume();

    const done = await waitForStatus(gateway.url, body.job_id, ['completed', 'failed', 'cancelled']);
    assert.equal(done.status, 'completed');
    assert.equal(done.progress.completed_items, 300);
    assert.equal(done.progress.failed_items, 0);
    await assertAllVectors(gateway.url, body.job_id, documents);
    assert.equal((await call(`${gateway.url}/api/health`)).body.status, 'ok');
    const again = await submit(gateway.url, { model: MODEL, documents: docs(20, 'after') });
    assert.equal(again.status, 200);
    await waitForStatus(gateway.url, again.body.job_id, ['completed']);
    assert.ok(alive(gateway) && alive(worker), 'both processes are still up');
  });
}

test('a Redis restart without persistence (AOF off) loses the jobs but not the processes: new jobs run', { skip }, async (t) => {
  const { redis, gateway, worker } = await deployment(t, false);
  const { body } = await submit(gateway.url, { model: MODEL, documents: docs(200, 'lost') });
  await redis.stop(true);
  await assertUnavailable(gateway);
  await redis.start();
  await waitFor(async () => ((await call(`${gateway.url}/api/batch/jobs/${body.job_id}`)).status === 404 ? true : undefined), 'the lost job to be 404');
  // The worker re-registers by itself, so a new job runs.
  const fresh = await waitFor(async () => {
    const answer = await submit(gateway.url, { model: MODEL, documents: docs(30, 'fresh') });
    return answer.status === 200 && answer.body.status === 'running' ? answer : undefined;
  }, 'a new job to be admitted as running');
  const done = await waitForStatus(gateway.url, fresh.body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.ok(alive(gateway) && alive(worker));
});
