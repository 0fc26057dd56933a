/** GET /api/batch/jobs and /api/stats. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitForStatus } from './helpers.js';

test('list is newest first, honours limit and status, and total counts every stored match', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    const { body } = await submit(url, { model: MODEL, documents: docs(2), metadata: { n: i } });
    ids.push(body.job_id);
    await waitForStatus(url, body.job_id, ['completed']);
  }
  const all = (await call(`${url}/api/batch/jobs`)).body;
  assert.equal(all.total, 5);
  assert.deepEqual(all.jobs.map((j: { job_id: string }) => j.job_id), [...ids].reverse());
  assert.equal(all.jobs[0].metadata.n, 4);
  assert.equal(all.jobs[0].progress.percent, 100);
  const two = (await call(`${url}/api/batch/jobs?limit=2`)).body;
  assert.equal(two.jobs.length, 2);
  assert.equal(two.total, 5);
  const running = (await call(`${url}/api/batch/jobs?status=running`)).body;
  assert.deepEqual(running, { jobs: [], total: 0 });
  const completed = (await call(`${url}/api/batch/jobs?status=completed&limit=1000`)).body;
  assert.equal(completed.total, 5);
});

test('stats count created, completed, failed and cancelled jobs, and show the backends', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] }, { SOLLOL_CHUNK_RETRIES: '0' });
  const ok = await submit(url, { model: MODEL, documents: docs(3) });
  await waitForStatus(url, ok.body.job_id, ['completed']);
  node.configure({ failureRate: 1 });
  const bad = await submit(url, { model: MODEL, documents: docs(3, 'bad') });
  await waitForStatus(url, bad.body.job_id, ['failed']);
  node.configure({ failureRate: 0, hang: true });
  const hung = await submit(url, { model: MODEL, documents: docs(3, 'hung') });
  const during = (await call(`${url}/api/stats`)).body.batch_jobs;
  assert.equal(during.active_jobs, 1);
  await call(`${url}/api/batch/jobs/${hung.body.job_id}`, { method: 'DELETE' });
  const stats = (await call(`${url}/api/stats`)).body;
  assert.deepEqual(
    { ...stats.batch_jobs },
    {
      total_jobs_created: 3,
      total_jobs_completed: 1,
      total_jobs_failed: 1,
      total_jobs_cancelled: 1,
      active_jobs: 0,
      pending_jobs: 0,
      stored_jobs: 3,
      max_jobs: 1000,
      job_ttl_seconds: 3600,
      batch_processing: true,
    },
  );
  assert.equal(stats.backends.length, 1);
  assert.equal(stats.backends[0].url, node.url);
  assert.equal(stats.backends[0].kind, 'ollama');
  assert.equal(stats.backends[0].healthy, true);
  assert.ok(stats.backends[0].models.includes('nomic-embed-text:latest'));
  assert.ok(stats.backends[0].errors >= 1);
});
