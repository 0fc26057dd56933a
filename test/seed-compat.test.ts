/**
 * What SOLLOL v0.7.0's own test_batch_api.py checks, against `sollol up --port ... --backend <a
 * simulated node serving nomic-embed-text>`: running on submit, version in health, results
 * 200 after 2 s, 200 or 404 for an immediate cancel, batch_jobs in stats.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, startSim, startTestGateway, submit } from './helpers.js';

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

  await new Promise((resolve) => setTimeout(resolve, 2000));
  const results = await call(`${url}/api/batch/results/${jobId}`);
  assert.equal(results.status, 200);
  assert.equal(results.body.results.length, 3);

  const list = await call(`${url}/api/batch/jobs?limit=10`);
  assert.equal(list.status, 200);
  assert.ok(Array.isArray(list.body.jobs));
  assert.ok(list.body.total >= 1);

  const another = await submit(url, { model: MODEL, documents: ['Cancel me'] });
  const cancel = await call(`${url}/api/batch/jobs/${another.body.job_id}`, { method: 'DELETE' });
  assert.ok([200, 404].includes(cancel.status));

  const stats = await call(`${url}/api/stats`);
  assert.equal(stats.status, 200);
  assert.ok('batch_jobs' in stats.body);
  assert.ok(stats.body.batch_jobs.total_jobs_created >= 2);
});
