/** The embedded store outlives the process: finished jobs stay, unfinished ones are never left running. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, tempDir, waitFor, waitForStatus } from './helpers.js';

test('a restart on the same data directory keeps a finished job\'s status and results', async (t) => {
  const node = await startSim(t);
  const dataDir = tempDir(t);
  const first = await startTestGateway(t, { backend: [node.url], dataDir });
  const { body } = await submit(first.url, { model: MODEL, documents: docs(70), metadata: { tag: 'keep' } });
  await waitForStatus(first.url, body.job_id, ['completed']);
  const before = (await call(`${first.url}/api/batch/results/${body.job_id}`)).body;
  await first.stop();

  const second = await startTestGateway(t, { backend: [node.url], dataDir });
  const status = (await call(`${second.url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(status.status, 'completed');
  assert.equal(status.metadata.tag, 'keep');
  const after = (await call(`${second.url}/api/batch/results/${body.job_id}`)).body;
  assert.deepEqual(after, before);
  assert.equal((await call(`${second.url}/api/stats`)).body.batch_jobs.total_jobs_completed, 1);
});

test('a job unfinished when the gateway stopped is marked failed with GATEWAY_RESTARTED; its finished items stay', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 30 });
  const dataDir = tempDir(t);
  const first = await startTestGateway(t, { backend: [node.url], dataDir, chunkSize: '10' });
  const { body } = await submit(first.url, { model: MODEL, documents: docs(1000) });
  await waitFor(async () => ((await call(`${first.url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 20 ? true : undefined), 'progress');
  node.configure({ hang: true });
  await first.stop();

  const second = await startTestGateway(t, { backend: [node.url], dataDir });
  const status = (await call(`${second.url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(status.status, 'failed');
  assert.equal(status.errors[0].code, 'GATEWAY_RESTARTED');
  assert.ok(status.progress.completed_items >= 20);
  assert.equal(status.progress.completed_items + status.progress.failed_items, 1000);
  const results = (await call(`${second.url}/api/batch/results/${body.job_id}`)).body;
  const kept = results.results.filter((r: { embedding: unknown }) => Array.isArray(r.embedding)).length;
  assert.equal(kept, status.progress.completed_items);
  assert.ok(results.errors.some((e: { index: null; code: string }) => e.index === null && e.code === 'GATEWAY_RESTARTED'));
  assert.equal(results.errors.filter((e: { index: number | null }) => e.index !== null).length, status.progress.failed_items);
});
