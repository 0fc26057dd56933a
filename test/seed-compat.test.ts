/**
 * What SOLLOL v0.7.0's own test_batch_api.py checks, against `sollol up --port ... --backend <a
 * simulated node serving nomic-embed-text>`: running on submit, version in health, results
 * 200 once the job completed (the seed sleeps 2 s; here the wait is for the status), an
 * immediate cancel of a running job answering 200 (the seed accepts 200 or 404: the node is
 * made to hang so the job is surely still running), batch_jobs in stats.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

test('SOLLOL test_batch_api.py expectations hold', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], daskWorkers: '2', rayWorkers: '1' });

  const health = await call(`${url}/api/health`);
  assert.equal(health.status, 200);
  assert.ok('version' in health.body);

  const submitted = await submit(url, { model: MODEL, documents: ['Test document 1', 'Test document 2', 'Test document 3'], metadata: { test: 'batch_api' } });
  assert.equal(submitted.status, 200);
  assert.equal(submitted.body.status, 'running');
  assert.equal(submitted.body.total_items, 3);
  const jobId = submitted.body.job_id as string;

  const status = await call(`${url}/api/batch/jobs/${jobId}`);
  assert.equal(status.status, 200);
  assert.equal(status.body.job_id, jobId);
  assert.ok(['pending', 'running', 'completed'].includes(status.body.status));

  await waitForStatus(url, jobId, ['completed']);
  const results = await call(`${url}/api/batch/results/${jobId}`);
  assert.equal(results.status, 200);
  assert.equal(results.body.results.length, 3);

  const list = await call(`${url}/api/batch/jobs?limit=10`);
  assert.equal(list.status, 200);
  assert.ok(Array.isArray(list.body.jobs));
  assert.ok(list.body.total >= 1);

  node.configure({ hang: true });
  const another = await submit(url, { model: MODEL, documents: ['Cancel me'] });
  await waitFor(() => (node.stats().hung >= 1 ? true : undefined), 'the job to be on a call');
  const cancel = await call(`${url}/api/batch/jobs/${another.body.job_id}`, { method: 'DELETE' });
  assert.equal(cancel.status, 200);
  assert.equal(cancel.body.cancelled, true);
  assert.equal((await call(`${url}/api/batch/jobs/${another.body.job_id}`)).body.status, 'cancelled');
  node.configure({ hang: false });

  const stats = await call(`${url}/api/stats`);
  assert.equal(stats.status, 200);
  assert.ok('batch_jobs' in stats.body);
  assert.ok(stats.body.batch_jobs.total_jobs_created >= 2);
});
