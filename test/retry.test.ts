/** POST /api/batch/jobs/{id}/retry: a new job keeps the succeeded vectors and re-runs only the rest. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitForStatus } from './helpers.js';

test('retry after the node came back re-runs only the failed items; the old job is unchanged', async (t) => {
  const node = await startSim(t, { maxInputChars: 100 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '4', cache: false });
  const documents = docs(12);
  documents[3] = 'x'.repeat(300);
  documents[9] = 'y'.repeat(300);
  const first = await submit(url, { model: MODEL, documents, options: { truncate: false }, metadata: { batch: 1 } });
  const failed = await waitForStatus(url, first.body.job_id, ['completed']);
  assert.equal(failed.progress.failed_items, 2);

  node.configure({ maxInputChars: 10_000 });
  const sentBefore = node.stats().documents;
  const retry = await call(`${url}/api/batch/jobs/${first.body.job_id}/retry`, { method: 'POST' });
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  assert.equal(retry.body.retry_of, first.body.job_id);
  assert.equal(retry.body.retried_items, 2);
  assert.notEqual(retry.body.job_id, first.body.job_id);
  const done = await waitForStatus(url, retry.body.job_id, ['completed']);
  assert.equal(done.progress.completed_items, 12);
  assert.equal(done.progress.failed_items, 0);
  assert.equal(done.retry_of, first.body.job_id);
  assert.equal(done.metadata.batch, 1);
  assert.equal(node.stats().documents - sentBefore, 2, 'only the two failed documents were sent again');

  const oldResults = (await call(`${url}/api/batch/results/${first.body.job_id}`)).body;
  const newResults = (await call(`${url}/api/batch/results/${retry.body.job_id}`)).body;
  assert.equal(oldResults.failed_items, 2, 'the old job stays as it was');
  assert.equal(oldResults.status, 'completed');
  assert.deepEqual(newResults.results[0], oldResults.results[0]);
  assert.equal(newResults.results[3].embedding.length, 768);
  assert.deepEqual(newResults.errors, []);
});

test('retry of an unknown job is 404, of a running job 409', async (t) => {
  const node = await startSim(t, { hang: true });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  assert.equal((await call(`${url}/api/batch/jobs/00000000-0000-4000-8000-000000000000/retry`, { method: 'POST' })).body.code, 'JOB_NOT_FOUND');
  const running = await submit(url, { model: MODEL, documents: docs(2) });
  const answer = await call(`${url}/api/batch/jobs/${running.body.job_id}/retry`, { method: 'POST' });
  assert.equal(answer.status, 409);
  assert.equal(answer.body.code, 'JOB_NOT_FINISHED');
  node.configure({ hang: false });
});

test('retry of a cancelled job re-runs the items it never processed', async (t) => {
  const node = await startSim(t, { hang: true });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const job = await submit(url, { model: MODEL, documents: docs(5) });
  await call(`${url}/api/batch/jobs/${job.body.job_id}`, { method: 'DELETE' });
  node.configure({ hang: false });
  const retry = await call(`${url}/api/batch/jobs/${job.body.job_id}/retry`, { method: 'POST' });
  assert.equal(retry.body.retried_items, 5);
  const done = await waitForStatus(url, retry.body.job_id, ['completed']);
  assert.equal(done.progress.completed_items, 5);
});
