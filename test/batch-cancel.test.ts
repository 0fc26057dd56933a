/** Cancel is real: status written before the 200, no new backend call after it, in-flight calls aborted, final forever. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

test('cancel mid-job: 200, no backend call starts afterwards, in-flight calls are aborted, finished results stay', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 40 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10' });
  const { body } = await submit(url, { model: MODEL, documents: docs(2000) });
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 30 ? true : undefined), 'some progress');

  const cancel = await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' });
  assert.equal(cancel.status, 200);
  assert.deepEqual(cancel.body, { job_id: body.job_id, cancelled: true, message: 'Job cancelled successfully' });
  const callsAtCancel = node.stats().embedCalls;
  // The status was written before the answer.
  const status = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(status.status, 'cancelled');
  assert.ok(status.completed_at);

  // In-flight calls are aborted: the node sees its clients go away, and no call starts later.
  await waitFor(() => (node.stats().inFlight === 0 ? true : undefined), 'in-flight calls to end');
  // Instead of sleeping: a later one-chunk job completing shows the scheduler moved past the
  // cancelled job; exactly its one call is the only one after the cancel.
  const sentinel = await submit(url, { model: MODEL, documents: docs(5, 'sentinel') });
  assert.equal((await waitForStatus(url, sentinel.body.job_id, ['completed', 'failed', 'cancelled'])).status, 'completed');
  assert.equal(node.stats().embedCalls, callsAtCancel + 1, 'no backend call for the cancelled job after the cancel');

  const after = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(after.status, 'cancelled', 'the status never changes again');
  assert.ok(after.progress.percent > 0 && after.progress.percent < 100, 'keeps the percent it reached');

  const results = await call(`${url}/api/batch/results/${body.job_id}`);
  assert.equal(results.status, 200);
  assert.equal(results.body.status, 'cancelled');
  assert.equal(results.body.results.length, 2000);
  const done = results.body.results.filter((r: { embedding: unknown }) => Array.isArray(r.embedding));
  assert.equal(done.length, after.progress.completed_items, 'results finished before the cancel stay available');
  const never = results.body.results.filter((r: { code?: string }) => r.code === 'CANCELLED');
  assert.equal(done.length + never.length, 2000);
  assert.equal(results.body.failed_items, 0, 'cancelled items are not failed items');
  assert.deepEqual(results.body.errors, [{ index: null, error: 'Job cancelled by request', code: 'CANCELLED' }]);

  const again = await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' });
  assert.equal(again.status, 200, 'cancelling a cancelled job again is the same 200');
  assert.equal(again.body.cancelled, true);
  const stats = (await call(`${url}/api/stats`)).body.batch_jobs;
  assert.equal(stats.total_jobs_cancelled, 1);
});

test('cancel of a job whose call hangs aborts the call and leaves nothing running', async (t) => {
  const node = await startSim(t, { hang: true });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const { body } = await submit(url, { model: MODEL, documents: docs(10) });
  await waitFor(() => (node.stats().hung > 0 ? true : undefined), 'the call to hang');
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' })).status, 200);
  await waitFor(() => (node.stats().hung === 0 ? true : undefined), 'the hung call to be aborted');
  const stats = (await call(`${url}/api/stats`)).body;
  assert.equal(stats.scheduler.chunks_in_flight, 0);
  assert.equal(stats.batch_jobs.active_jobs, 0);
});

test('cancel of a completed job answers 404 JOB_NOT_CANCELLABLE and changes nothing', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const { body } = await submit(url, { model: MODEL, documents: docs(3) });
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${body.job_id}`)).body.status === 'completed' ? true : undefined), 'completion');
  const cancel = await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' });
  assert.equal(cancel.status, 404);
  assert.equal(cancel.body.code, 'JOB_NOT_CANCELLABLE');
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`)).body.status, 'completed');
});
