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

test('a job unfinished when the gateway stopped resumes on the next start and completes', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 30 });
  const dataDir = tempDir(t);
  const first = await startTestGateway(t, { backend: [node.url], dataDir, chunkSize: '10' });
  const { body } = await submit(first.url, { model: MODEL, documents: docs(300) });
  await waitFor(async () => ((await call(`${first.url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 20 ? true : undefined), 'progress');
  await first.stop();
  const stopped = (await call(`${node.url}/sim/stats`)).body;
  const doneAtStop = stopped.documents as number;

  const second = await startTestGateway(t, { backend: [node.url], dataDir });
  const status = await waitForStatus(second.url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.equal(status.progress.completed_items, 300);
  assert.equal(node.stats().documents, 300, 'each document reached the node exactly once');
  assert.ok(doneAtStop < 300);
});
