/** Backend failures become per-item errors with index and stable code, never hidden; the job still finishes. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitForStatus } from './helpers.js';

test('a node that fails every call, alone: each item gets BACKEND_UNAVAILABLE after the retries and a bounded bisection, and the job is failed', async (t) => {
  const node = await startSim(t, { failureRate: 1 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '4' }, { SOLLOL_CHUNK_RETRIES: '1' });
  const { body } = await submit(url, { model: MODEL, documents: docs(10) });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'failed');
  assert.equal(status.progress.failed_items, 10);
  assert.equal(status.progress.percent, 100);
  assert.deepEqual(status.error_counts, { BACKEND_UNAVAILABLE: 10 });
  const results = (await call(`${url}/api/batch/results/${body.job_id}`)).body;
  assert.equal(results.failed_items, 10);
  assert.equal(results.errors.length, 10);
  assert.deepEqual(results.errors.map((e: { index: number }) => e.index), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  for (const e of results.errors) {
    assert.equal(e.code, 'BACKEND_UNAVAILABLE');
    assert.match(e.error, /500/);
  }
  assert.ok(results.results.every((r: { embedding: unknown; code: string }) => r.embedding === null && r.code === 'BACKEND_UNAVAILABLE'));
  // Per chunk of n: the call, one retry, then at most 2 calls per document (a bisection): 2 + 2n.
  assert.ok(node.stats().embedCalls <= 3 * 2 + 2 * 10, `${node.stats().embedCalls} calls`);
});

test('one over-long document in a chunk yields exactly one INPUT_REJECTED error; the others succeed', async (t) => {
  const node = await startSim(t, { maxInputChars: 500 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '16' });
  const documents = docs(40);
  documents[21] = 'x'.repeat(2000);
  const { body } = await submit(url, { model: MODEL, documents, options: { truncate: false } });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed', 'a job with some failed items is completed');
  assert.equal(status.progress.completed_items, 39);
  assert.equal(status.progress.failed_items, 1);
  const results = (await call(`${url}/api/batch/results/${body.job_id}`)).body;
  assert.equal(results.errors.length, 1);
  assert.equal(results.errors[0].index, 21);
  assert.equal(results.errors[0].code, 'INPUT_REJECTED');
  assert.match(results.errors[0].error, /context length/);
  assert.equal(results.results[21].embedding, null);
  assert.equal(results.results[20].embedding.length, 768);
  assert.equal(results.results[22].embedding.length, 768);
});

test('a model the node lists but refuses: items fail with MODEL_NOT_FOUND', async (t) => {
  const node = await startSim(t, { rejectModels: [MODEL] });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const { body } = await submit(url, { model: MODEL, documents: docs(3) });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'failed');
  const results = (await call(`${url}/api/batch/results/${body.job_id}`)).body;
  assert.deepEqual(results.errors.map((e: { code: string }) => e.code), ['MODEL_NOT_FOUND', 'MODEL_NOT_FOUND', 'MODEL_NOT_FOUND']);
});

test('an Ollama older than 0.3 (no /api/embed) is served through the legacy /api/embeddings', async (t) => {
  const node = await startSim(t, { legacyOnly: true });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const { body } = await submit(url, { model: MODEL, documents: docs(5) });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.equal(status.progress.completed_items, 5);
  assert.equal(node.stats().legacyEmbedCalls, 5, 'one legacy call per document');
});

test('a node that fails some calls still yields a complete job thanks to retries', async (t) => {
  const node = await startSim(t, { failureRate: 0.3, failureSeed: 7 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '8' }, { SOLLOL_CHUNK_RETRIES: '6' });
  const { body } = await submit(url, { model: MODEL, documents: docs(120) });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.equal(status.progress.completed_items, 120);
  assert.ok(node.stats().failures > 0, 'the node did fail some calls');
});
