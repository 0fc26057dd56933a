import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simVector } from '../src/sim/index.js';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

test('a submitted job runs at once, completes, and returns one vector per document equal to the node\'s', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const documents = docs(150);
  const submitted = await submit(url, { model: MODEL, documents, metadata: { source: 'kb' } });
  assert.equal(submitted.status, 200);
  assert.equal(submitted.body.status, 'running');
  assert.equal(submitted.body.total_items, 150);
  assert.equal(submitted.body.message, 'Batch embedding job submitted with 150 documents');
  assert.match(submitted.body.job_id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

  const status = await waitForStatus(url, submitted.body.job_id, ['completed']);
  assert.deepEqual(status.progress, { total_items: 150, completed_items: 150, failed_items: 0, percent: 100 });
  assert.deepEqual(status.metadata, { model: MODEL, source: 'kb' });
  assert.equal(status.job_type, 'embed');
  assert.equal(status.dimensions, 768);
  for (const field of ['created_at', 'started_at', 'completed_at']) assert.match(status[field], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
  assert.ok(status.duration_seconds >= 0);

  const results = await call(`${url}/api/batch/results/${submitted.body.job_id}`);
  assert.equal(results.status, 200);
  assert.equal(results.body.results.length, 150);
  assert.deepEqual(results.body.errors, []);
  assert.equal(results.body.completed_items, 150);
  assert.equal(results.body.failed_items, 0);
  assert.equal(results.body.dimensions, 768);
  for (const i of [0, 77, 149]) {
    // Printed as the shortest decimal that reads back to the same float32.
    const got = (results.body.results[i].embedding as number[]).map(Math.fround);
    assert.deepEqual(got, Array.from(simVector(MODEL, documents[i]!, 768)), `vector ${i}`);
  }
  assert.equal(node.stats().documents, 150);
});

test('results of an unfinished job answer 409 JOB_NOT_FINISHED; progress moves while it runs', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 30 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10' });
  const { body } = await submit(url, { model: MODEL, documents: docs(400) });
  const early = await call(`${url}/api/batch/results/${body.job_id}`);
  assert.equal(early.status, 409);
  assert.equal(early.body.code, 'JOB_NOT_FINISHED');
  const partial = await waitFor(async () => {
    const s = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
    return s.status === 'running' && s.progress.completed_items > 0 ? s : undefined;
  }, 'progress before the end');
  assert.ok(partial.progress.percent > 0 && partial.progress.percent < 100, `percent ${partial.progress.percent}`);
  assert.equal(partial.completed_at, null);
  await waitForStatus(url, body.job_id, ['completed']);
});
