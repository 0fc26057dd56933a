/**
 * Nothing lost, nothing redone: kill -9 the gateway mid-job, start it again on the same data
 * directory, and the job completes from where it was; every document has exactly one
 * result, equal to a run without a crash; finished chunks are not sent again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, submit, tempDir, waitFor, waitForStatus } from './helpers.js';
import { spawnGateway } from './subprocess.js';

test('kill -9 mid-job, restart: the job resumes, completes with every vector, and no finished chunk is re-sent', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 15 });
  const dataDir = tempDir(t);
  const args = ['--backend', node.url, '--data-dir', dataDir, '--chunk-size', '10', '--no-cache'];
  const documents = docs(600, 'crash');

  const first = await spawnGateway(t, args);
  const { body } = await submit(first.url, { model: MODEL, documents, metadata: { run: 'crash' } });
  const before = await waitFor(async () => {
    const status = (await call(`${first.url}/api/batch/jobs/${body.job_id}`)).body;
    return status.progress.completed_items >= 100 ? status : undefined;
  }, 'progress before the crash');
  await first.kill9();
  const sentBeforeCrash = node.stats().documents;
  node.resetStats();

  const second = await spawnGateway(t, args);
  const resumed = (await call(`${second.url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(resumed.created_at, before.created_at, 'timestamps stay truthful');
  assert.equal(resumed.started_at, before.started_at);
  const done = await waitForStatus(second.url, body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 600);
  assert.equal(done.progress.failed_items, 0);
  assert.equal(done.metadata.run, 'crash');

  // The crashed process had recorded at least `before.completed_items`; only the rest (plus chunks that
  // were in flight, at most --workers of them) may reach the node again.
  const resent = node.stats().documents;
  assert.ok(resent <= 600 - before.progress.completed_items, `re-sent ${resent} documents after the restart`);
  assert.ok(sentBeforeCrash + resent >= 600);

  const results = (await call(`${second.url}/api/batch/results/${body.job_id}`)).body;
  assert.equal(results.results.length, 600);
  assert.deepEqual(results.errors, []);

  // Compare every vector with a job that ran without a crash.
  const clean = await submit(second.url, { model: MODEL, documents });
  await waitForStatus(second.url, clean.body.job_id, ['completed']);
  const cleanResults = (await call(`${second.url}/api/batch/results/${clean.body.job_id}`)).body;
  assert.deepEqual(results.results, cleanResults.results);
  const stats = (await call(`${second.url}/api/stats`)).body.batch_jobs;
  assert.equal(stats.total_jobs_created, 2);
  assert.equal(stats.total_jobs_completed, 2);
  await second.stop();
});

test('a pending job survives a restart and starts when a backend appears', async (t) => {
  const node = await startSim(t);
  const dataDir = tempDir(t);
  const first = await spawnGateway(t, ['--backend', 'http://127.0.0.1:9', '--data-dir', dataDir]);
  const { body } = await submit(first.url, { model: MODEL, documents: docs(4) });
  assert.equal(body.status, 'pending');
  await first.kill9();
  const second = await spawnGateway(t, ['--backend', node.url, '--data-dir', dataDir]);
  const done = await waitForStatus(second.url, body.job_id, ['completed']);
  assert.equal(done.progress.completed_items, 4);
  await second.stop();
});
