/** No reachable backend: jobs wait as pending, start when a node comes, fail after --pending-timeout. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startSimNode } from '../src/sim/index.js';
import { MODEL, call, docs, startTestGateway, submit, waitForStatus } from './helpers.js';
import { freePort } from './ports.js';

test('a job submitted while no backend is reachable is pending, then runs when the node comes up', async (t) => {
  const port = await freePort();
  const { url } = await startTestGateway(t, { backend: [`http://127.0.0.1:${port}`] });
  const { status, body } = await submit(url, { model: MODEL, documents: docs(5) });
  assert.equal(status, 200);
  assert.equal(body.status, 'pending');
  const pending = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(pending.status, 'pending');
  assert.equal(pending.started_at, null);
  assert.equal((await call(`${url}/api/stats`)).body.batch_jobs.pending_jobs, 1);

  const node = await startSimNode({ port });
  t.after(() => node.close());
  const done = await waitForStatus(url, body.job_id, ['completed']);
  assert.ok(done.started_at);
  assert.equal(done.progress.completed_items, 5);
});

test('a pending job that finds no backend within --pending-timeout fails with BACKEND_UNAVAILABLE', async (t) => {
  const port = await freePort();
  const { url } = await startTestGateway(t, { backend: [`http://127.0.0.1:${port}`], pendingTimeout: '0.3' });
  const { body } = await submit(url, { model: MODEL, documents: docs(3) });
  const failed = await waitForStatus(url, body.job_id, ['failed']);
  assert.equal(failed.errors[0].code, 'BACKEND_UNAVAILABLE');
  assert.equal(failed.progress.failed_items, 3);
  const results = (await call(`${url}/api/batch/results/${body.job_id}`)).body;
  assert.deepEqual(results.results.map((r: { code: string }) => r.code), ['BACKEND_UNAVAILABLE', 'BACKEND_UNAVAILABLE', 'BACKEND_UNAVAILABLE']);
});

test('a cancelled pending job stays cancelled when a backend appears', async (t) => {
  const port = await freePort();
  const { url } = await startTestGateway(t, { backend: [`http://127.0.0.1:${port}`] });
  const { body } = await submit(url, { model: MODEL, documents: docs(3) });
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' })).status, 200);
  const node = await startSimNode({ port });
  t.after(() => node.close());
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`)).body.status, 'cancelled');
  assert.equal(node.stats().embedCalls, 0);
});
