/** Generation items under faults: the generation timeout, and a node dying mid-job. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call, MODEL, startSim, startTestGateway, waitFor, waitForStatus } from './helpers.js';

const CHAT = 'llama3.2';
const MODELS = { [CHAT]: null, [MODEL]: null };

test('the generation timeout ends a sync call (504) and an item (BACKEND_TIMEOUT), apart from the backend timeout', async (t) => {
  const sim = await startSim(t, { models: MODELS, replyTokens: 2, delayPerTokenMs: 60_000 });
  const { url } = await startTestGateway(t, { backend: [sim.url], generationTimeout: '0.3', backendTimeout: '120' }, { SOLLOL_CHUNK_RETRIES: '0' });
  const sync = await call(`${url}/v1/chat/completions`, { body: { model: CHAT, messages: [{ role: 'user', content: 'x' }] } });
  assert.equal(sync.status, 504);
  assert.equal(sync.body.error.code, 'BACKEND_TIMEOUT');
  const job = (await call(`${url}/api/batch/generate`, { body: { model: CHAT, prompts: ['a'] } })).body;
  const done = await waitForStatus(url, job.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'failed');
  const results = (await call(`${url}/api/batch/results/${job.job_id}`)).body.results;
  assert.equal(results[0].code, 'BACKEND_TIMEOUT');
  assert.match(results[0].error, /within 300 ms/);
  // Embedding is not bound by the generation timeout.
  assert.equal((await call(`${url}/api/embed`, { body: { model: MODEL, input: 'x' } })).status, 200);
});

test('a node that dies mid-job: its items run again on the other node and the job completes with every answer', async (t) => {
  const slow = await startSim(t, { models: MODELS, replyTokens: 2, delayPerTokenMs: 60_000, generateParallel: 2 });
  const fast = await startSim(t, { models: MODELS, replyTokens: 2, generateParallel: 2 });
  const { url } = await startTestGateway(t, { backend: [`${slow.url}?parallel=2`, `${fast.url}?parallel=2`] });
  const prompts = Array.from({ length: 12 }, (_, i) => `failover ${i}`);
  const job = (await call(`${url}/api/batch/generate`, { body: { model: CHAT, prompts } })).body;
  await waitFor(() => (slow.stats().generating === 2 ? true : undefined), 'items in flight on the slow node');
  await slow.close();
  const done = await waitForStatus(url, job.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 12);
  const results = (await call(`${url}/api/batch/results/${job.job_id}`)).body.results;
  for (const [i, item] of results.entries()) {
    const expected = (await call(`${fast.url}/api/generate`, { body: { model: CHAT, prompt: prompts[i], stream: false } })).body;
    assert.equal(item.response, expected.response, `item ${i}`);
  }
});

test('a generate job for a model only an embedding-only backend serves fails its items (INPUT_REJECTED) instead of waiting', async (t) => {
  const { url } = await startTestGateway(t, { backend: ['embedded'] });
  const job = (await call(`${url}/api/batch/generate`, { body: { model: 'use-lite', prompts: ['a', 'b'] } })).body;
  const done = await waitForStatus(url, job.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'failed');
  assert.equal(done.progress.failed_items, 2);
  const results = (await call(`${url}/api/batch/results/${job.job_id}`)).body.results;
  assert.deepEqual(results.map((r: any) => r.code), ['INPUT_REJECTED', 'INPUT_REJECTED']);
  assert.match(results[0].error, /cannot generate/);
});
