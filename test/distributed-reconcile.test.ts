/**
 * No stranded job (issue 11 item 2): a gateway killed between admission and enqueue leaves a
 * running job with nothing queued; another gateway's reconciler enqueues it again and it
 * completes with every vector once. A running job whose only worker died fails its remaining
 * documents BACKEND_UNAVAILABLE after --pending-timeout. The kill lands in that window through
 * the test-only hook SOLLOL_TEST_CRASH_AFTER_ADMIT (the gateway SIGKILLs itself there).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { MODEL, assertAllVectors, call, docs, startSim, submit, waitFor, waitForStatus } from './helpers.js';
import { redisSuite } from './redisServer.js';
import { spawnGateway, spawnWorker } from './subprocess.js';

const redis = await redisSuite();
const { skip, client } = redis;

const ENV = { SOLLOL_CHUNK_LOCK: '2', SOLLOL_HEALTH_INTERVAL: '0.2', SOLLOL_SWEEP_INTERVAL: '0.2', SOLLOL_RECONCILE_INTERVAL: '0.3' };

function flagsFor(t: TestContext): string[] {
  const prefix = redis.prefix('reconcile');
  void t;
  return ['--redis', redis.url, '--redis-prefix', prefix];
}

async function waitForWorkers(flags: string[], n: number): Promise<void> {
  const prefix = flags[3]!;
  await waitFor(async () => ((await client!.scard(`${prefix}workers`)) >= n ? true : undefined), 'the workers to register');
}

test('a gateway killed between admission and enqueue strands nothing: another gateway\'s reconciler enqueues the job', { skip }, async (t) => {
  const flags = flagsFor(t);
  const node = await startSim(t, { delayPerCallMs: 5 });
  await spawnWorker(t, [...flags, '--backend', node.url], ENV);
  await waitForWorkers(flags, 1);
  const doomed = await spawnGateway(t, [...flags, '--workers', '0', '--backend', node.url, '--chunk-size', '10'], { ...ENV, SOLLOL_TEST_CRASH_AFTER_ADMIT: '1' });
  const survivor = await spawnGateway(t, [...flags, '--workers', '0', '--backend', node.url, '--chunk-size', '10'], ENV);
  // The doomed gateway must see the worker, so the job is admitted as running (and then stranded).
  await waitFor(async () => ((await call(`${survivor.url}/api/batch/embed`, { body: { model: MODEL, documents: ['probe'] } })).body.status === 'running' ? true : undefined), 'the gateways to see the worker');
  const documents = docs(200, 'stranded');
  const exited = new Promise<void>((resolve) => doomed.child.once('exit', () => resolve()));
  await submit(doomed.url, { model: MODEL, documents }).catch(() => undefined);
  await exited;
  assert.equal(doomed.child.signalCode, 'SIGKILL', 'the gateway died in the admit-to-enqueue window');

  const stranded = await waitFor(async () => {
    const listed = (await call(`${survivor.url}/api/batch/jobs?limit=10`)).body.jobs as { job_id: string; progress: { total_items: number } }[];
    return listed.find((j) => j.progress.total_items === 200);
  }, 'the admitted job to be listed');
  const done = await waitForStatus(survivor.url, stranded.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 200);
  await assertAllVectors(survivor.url, stranded.job_id, documents);
  assert.ok(node.stats().documents <= 200 + 1 + 10, `no document embedded twice beyond one chunk (${node.stats().documents})`);
});

test('a running job whose only worker died fails its remaining documents BACKEND_UNAVAILABLE after --pending-timeout', { skip }, async (t) => {
  const flags = flagsFor(t);
  const node = await startSim(t, { delayPerCallMs: 40 });
  const worker = await spawnWorker(t, [...flags, '--backend', node.url], ENV);
  await waitForWorkers(flags, 1);
  const gateway = await spawnGateway(t, [...flags, '--workers', '0', '--backend', node.url, '--chunk-size', '5', '--pending-timeout', '1'], ENV);
  await waitFor(async () => ((await submit(gateway.url, { model: MODEL, documents: ['probe'] })).body.status === 'running' ? true : undefined), 'the gateway to see the worker');
  const { body } = await submit(gateway.url, { model: MODEL, documents: docs(1000, 'orphaned') });
  await waitFor(async () => ((await call(`${gateway.url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 20 ? true : undefined), 'progress');
  await worker.kill9();

  const done = await waitForStatus(gateway.url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'failed');
  assert.ok(done.progress.completed_items >= 20 && done.progress.completed_items < 1000);
  assert.equal(done.progress.completed_items + done.progress.failed_items, 1000);
  const results = (await call(`${gateway.url}/api/batch/results/${body.job_id}`)).body;
  const failed = results.results.filter((r: { code?: string }) => r.code !== undefined);
  assert.ok(failed.length > 0 && failed.every((r: { code: string }) => r.code === 'BACKEND_UNAVAILABLE'));
});
