/** TTL expiry, max_jobs eviction (expired first, then oldest finished, never an active job), 429 when all are active. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

test('a finished job expires job_ttl after completion: status, results and list forget it', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], jobTtl: '0.5' });
  const { body } = await submit(url, { model: MODEL, documents: docs(2) });
  await waitForStatus(url, body.job_id, ['completed']);
  assert.equal((await call(`${url}/api/batch/results/${body.job_id}`)).status, 200);
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${body.job_id}`)).status === 404 ? true : undefined), 'expiry');
  const gone = await call(`${url}/api/batch/results/${body.job_id}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.body.code, 'JOB_NOT_FOUND');
  assert.equal((await call(`${url}/api/batch/jobs`)).body.total, 0);
  assert.equal((await call(`${url}/api/stats`)).body.batch_jobs.total_jobs_created, 1, 'counters outlive the jobs');
});

test('over max_jobs the oldest finished job is evicted; a running job never is; all active -> 429 with Retry-After', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], maxJobs: '2' });
  const first = await submit(url, { model: MODEL, documents: docs(1) });
  await waitForStatus(url, first.body.job_id, ['completed']);
  node.configure({ hang: true });
  const running = await submit(url, { model: MODEL, documents: docs(1, 'running') });
  assert.equal(running.status, 200);
  const third = await submit(url, { model: MODEL, documents: docs(1, 'third') });
  assert.equal(third.status, 200, 'admitted by evicting the finished job');
  assert.equal((await call(`${url}/api/batch/jobs/${first.body.job_id}`)).status, 404, 'the oldest finished job went first');
  assert.equal((await call(`${url}/api/batch/jobs/${running.body.job_id}`)).body.status, 'running');

  const refused = await submit(url, { model: MODEL, documents: docs(1, 'refused') });
  assert.equal(refused.status, 429);
  assert.equal(refused.body.code, 'TOO_MANY_JOBS');
  assert.ok(Number(refused.headers.get('retry-after')) > 0);
  assert.equal((await call(`${url}/api/batch/jobs`)).body.total, 2);
  node.configure({ hang: false });
});
