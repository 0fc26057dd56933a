/**
 * Issue 10 item 1: every vector from a node is validated, in batch and sync routes, in small
 * answers and in answers of a whole default chunk (the byte reader declines every bad one to
 * the JSON.parse path, or reads it as Infinity for checkAnswer: embedJson.ts). A bad vector fails its
 * documents with INVALID_VECTOR, is never stored or cached, and the sync routes answer 502.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simVector } from '../src/sim/index.js';
import type { SimBadVector } from '../src/sim/options.js';
import { MODEL, assertAllVectors, call, docs, startSim, startTestGateway, submit, waitForStatus } from './helpers.js';

const POISON = 'POISONED';

/** `n` documents, those at `bad` carrying the poison text. */
function mixed(n: number, bad: readonly number[]): string[] {
  const list = docs(n);
  for (const i of bad) list[i] = `${POISON} ${i}: this one makes the node answer garbage`;
  return list;
}

/** Every poisoned document failed INVALID_VECTOR, every other one holds exactly the node's vector. */
async function assertOnlyPoisonFailed(url: string, jobId: string, documents: readonly string[], bad: readonly number[]): Promise<void> {
  const results = (await call(`${url}/api/batch/results/${jobId}`)).body;
  assert.equal(results.dimensions, 768);
  assert.deepEqual(
    results.errors.map((e: { index: number; code: string }) => [e.index, e.code]),
    bad.map((i) => [i, 'INVALID_VECTOR']),
  );
  documents.forEach((text, i) => {
    const item = results.results[i];
    if (bad.includes(i)) {
      assert.equal(item.embedding, null, `document ${i} is not stored`);
      assert.equal(item.code, 'INVALID_VECTOR');
    } else {
      assert.deepEqual((item.embedding as number[]).map(Math.fround), Array.from(simVector(MODEL, text, 768)), `vector ${i}`);
    }
  });
}

const SHAPES: readonly SimBadVector[] = ['null', 'string', 'boolean', 'huge', 'short'];

for (const shape of SHAPES) {
  for (const [where, chunkSize] of [['4-document answers', 4], ['64-document answers', 64]] as const) {
    test(`a node answering ${shape} elements (${where}): only the poisoned documents fail INVALID_VECTOR, the job says so`, async (t) => {
      const node = await startSim(t, { poison: POISON, badVector: shape });
      const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: String(chunkSize) });
      const bad = chunkSize === 4 ? [1, 6] : [5, 40];
      const documents = mixed(chunkSize === 4 ? 12 : 64, bad);
      const { body } = await submit(url, { model: MODEL, documents });
      const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
      assert.equal(status.status, 'completed');
      assert.equal(status.progress.failed_items, 2);
      assert.deepEqual(status.error_counts, { INVALID_VECTOR: 2 });
      assert.deepEqual(status.errors.map((e: { index: number }) => e.index), bad);
      await assertOnlyPoisonFailed(url, body.job_id, documents, bad);
    });
  }
}

test('a node whose every vector is bad: every item fails INVALID_VECTOR, the job is failed, never completed with garbage', async (t) => {
  const node = await startSim(t, { badVector: 'string' });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '4' });
  const { body } = await submit(url, { model: MODEL, documents: docs(8) });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'failed');
  assert.equal(status.progress.failed_items, 8);
  assert.deepEqual(status.error_counts, { INVALID_VECTOR: 8 });
  assert.equal(status.dimensions, undefined, 'no vector was stored, so no dimensions');
});

test('vectors of another length than the job\'s first ones (across chunks) fail INVALID_VECTOR; dimensions stay those of the first', async (t) => {
  const node = await startSim(t, { poison: POISON, badVector: 'short' });
  // One document per call, one call at a time: the first recorded vector is document 0's.
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '1', workers: '1' });
  const bad = [3, 7];
  const documents = mixed(9, bad);
  const { body } = await submit(url, { model: MODEL, documents });
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.equal(status.dimensions, 768);
  await assertOnlyPoisonFailed(url, body.job_id, documents, bad);
});

test('a bad answer is never cached: once the node is fixed, the same documents get their real vectors', async (t) => {
  const node = await startSim(t, { poison: POISON, badVector: 'null' });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '4' });
  const documents = mixed(8, [2]);
  const first = await submit(url, { model: MODEL, documents });
  await waitForStatus(url, first.body.job_id, ['completed', 'failed']);
  node.configure({ badVector: 'none' });
  const second = await submit(url, { model: MODEL, documents });
  const status = await waitForStatus(url, second.body.job_id, ['completed', 'failed']);
  assert.equal(status.progress.failed_items, 0);
  await assertAllVectors(url, second.body.job_id, documents);
});

test('sync routes answer 502 INVALID_VECTOR in each family\'s shape, never the garbage', async (t) => {
  const node = await startSim(t, { badVector: 'null' });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const embed = await call(`${url}/api/embed`, { method: 'POST', body: { model: MODEL, input: ['a', 'b'] } });
  assert.equal(embed.status, 502);
  assert.equal(embed.body.code, 'INVALID_VECTOR');
  assert.equal(typeof embed.body.error, 'string');
  const legacy = await call(`${url}/api/embeddings`, { method: 'POST', body: { model: MODEL, prompt: 'a' } });
  assert.equal(legacy.status, 502);
  assert.equal(legacy.body.code, 'INVALID_VECTOR');
  const openai = await call(`${url}/v1/embeddings`, { method: 'POST', body: { model: MODEL, input: ['a', 'b'] } });
  assert.equal(openai.status, 502);
  assert.equal(openai.body.error.code, 'INVALID_VECTOR');
  assert.equal(openai.body.error.type, 'server_error');
});

test('sync /api/embed with dimensions the node did not honour answers 502 INVALID_VECTOR', async (t) => {
  // The simulated node (as Ollama) ignores a dimensions larger than the model's.
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const answer = await call(`${url}/api/embed`, { method: 'POST', body: { model: MODEL, input: ['a'], dimensions: 1024 } });
  assert.equal(answer.status, 502);
  assert.equal(answer.body.code, 'INVALID_VECTOR');
  const ok = await call(`${url}/api/embed`, { method: 'POST', body: { model: MODEL, input: ['a'], dimensions: 256 } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.embeddings[0].length, 256);
});

test('a sync answer mixing vector lengths answers 502 INVALID_VECTOR', async (t) => {
  const node = await startSim(t, { poison: POISON, badVector: 'short' });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const answer = await call(`${url}/v1/embeddings`, { method: 'POST', body: { model: MODEL, input: ['clean', `${POISON} x`] } });
  assert.equal(answer.status, 502);
  assert.equal(answer.body.error.code, 'INVALID_VECTOR');
});
