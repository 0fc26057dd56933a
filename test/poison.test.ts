/**
 * Issue 10 item 2: a document that makes a node fail costs only that document. A failure that
 * repeats for the same documents is bisected down to them, a document is tried on another node
 * before it fails, and a node failing every call is sick: its work moves, nothing is bisected.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simVector } from '../src/sim/index.js';
import { MODEL, assertAllVectors, call, docs, startSim, startTestGateway, submit, waitForStatus } from './helpers.js';

const POISON = 'POISONED';

function withPoison(n: number, bad: readonly number[]): string[] {
  const list = docs(n);
  for (const i of bad) list[i] = `${POISON} ${i}: bge-m3 yields NaN for this text`;
  return list;
}

async function assertOthersDone(url: string, jobId: string, documents: readonly string[], bad: readonly number[], code: string): Promise<any> {
  const results = (await call(`${url}/api/batch/results/${jobId}`)).body;
  assert.deepEqual(
    results.errors.map((e: { index: number; code: string }) => [e.index, e.code]),
    bad.map((i) => [i, code]),
  );
  documents.forEach((text, i) => {
    if (bad.includes(i)) return;
    assert.deepEqual((results.results[i].embedding as number[]).map(Math.fround), Array.from(simVector(MODEL, text, 768)), `vector ${i}`);
  });
  return results;
}

test('bge-m3\'s repeated 500 "unsupported value: NaN" for one document: only it fails, within 2 + 2*log2(chunk) calls', async (t) => {
  const node = await startSim(t, { poison: POISON, poisonError: 'nan500' });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '64' });
  const documents = withPoison(64, [17]);
  const { body } = await submit(url, { model: MODEL, documents });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.equal(status.progress.completed_items, 63);
  assert.equal(status.progress.failed_items, 1);
  assert.deepEqual(status.error_counts, { BACKEND_UNAVAILABLE: 1 });
  assert.match(status.errors[0].error, /unsupported value: NaN/);
  await assertOthersDone(url, body.job_id, documents, [17], 'BACKEND_UNAVAILABLE');
  // The first call, one retry, then two calls per halving (log2(64) = 6).
  assert.ok(node.stats().embedCalls <= 2 + 2 * 6, `${node.stats().embedCalls} calls: ${node.stats().callSizes.join(',')}`);
});

test('a 400 for any call holding one document: bisected at once (no retry), only it fails INPUT_REJECTED', async (t) => {
  const node = await startSim(t, { poison: POISON, poisonError: 'reject400' });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '32' });
  const documents = withPoison(32, [0, 31]);
  const { body } = await submit(url, { model: MODEL, documents });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.deepEqual(status.error_counts, { INPUT_REJECTED: 2 });
  await assertOthersDone(url, body.job_id, documents, [0, 31], 'INPUT_REJECTED');
  assert.ok(node.stats().embedCalls <= 1 + 2 * 2 * 5, `${node.stats().embedCalls} calls`);
});

test('a document one node cannot embed is tried on another node serving the model before it fails', async (t) => {
  const sick = await startSim(t, { poison: POISON, poisonError: 'nan500' });
  const good = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sick.url, good.url], chunkSize: '8' });
  const documents = withPoison(24, [3, 20]);
  const { body } = await submit(url, { model: MODEL, documents });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.equal(status.progress.failed_items, 0);
  await assertAllVectors(url, body.job_id, documents);
});

test('a document both nodes fail on fails once it was tried on each', async (t) => {
  const a = await startSim(t, { poison: POISON, badVector: 'null' });
  const b = await startSim(t, { poison: POISON, badVector: 'huge' });
  const { url } = await startTestGateway(t, { backend: [a.url, b.url], chunkSize: '8' });
  const documents = withPoison(16, [9]);
  const { body } = await submit(url, { model: MODEL, documents });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  await assertOthersDone(url, body.job_id, documents, [9], 'INVALID_VECTOR');
  const sawSingle = (node: typeof a): boolean => node.stats().callSizes.includes(1);
  assert.ok(sawSingle(a) && sawSingle(b), 'the isolated document was sent alone to both nodes');
});

test('a sick node beside a healthy one: its chunks move to the healthy node, nothing is bisected, nothing fails', async (t) => {
  const sick = await startSim(t, { failureRate: 1 });
  const good = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sick.url, good.url], chunkSize: '8' });
  const documents = docs(48);
  const { body } = await submit(url, { model: MODEL, documents });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  await assertAllVectors(url, body.job_id, documents);
  assert.ok(sick.stats().callSizes.every((n) => n === 8), `the sick node only saw whole chunks: ${sick.stats().callSizes.join(',')}`);
});

test('sync /api/embed with a poisoned document on a node that fails it answers the node\'s error, not garbage', async (t) => {
  const node = await startSim(t, { poison: POISON, poisonError: 'nan500' });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const answer = await call(`${url}/api/embed`, { method: 'POST', body: { model: MODEL, input: ['fine', `${POISON} x`] } });
  assert.ok(answer.status >= 500, `status ${answer.status}`);
  assert.equal(answer.body.code, 'BACKEND_UNAVAILABLE');
  assert.equal(answer.body.embeddings, undefined);
});
