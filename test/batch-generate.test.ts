/** SOLLOL-style batch generation: /api/batch/generate and /api/batch/chat jobs through the whole job core. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { call, MODEL, startSim, startTestGateway, tempDir, waitFor, waitForStatus } from './helpers.js';
import { spawnGateway } from './subprocess.js';

const CHAT = 'llama3.2';
const MODELS = { [CHAT]: null, [MODEL]: null };

async function direct(url: string, path: string, body: Record<string, unknown>): Promise<any> {
  return (await call(`${url}${path}`, { body: { model: CHAT, stream: false, ...body } })).body;
}

test('a generate job of prompts completes with the node answers, in every results format', async (t) => {
  const sim = await startSim(t, { models: MODELS, replyTokens: 5 });
  const { url } = await startTestGateway(t, { backend: [`${sim.url}?parallel=2`] });
  const prompts = Array.from({ length: 9 }, (_, i) => `prompt number ${i}`);
  const submitted = await call(`${url}/api/batch/generate`, { body: { model: CHAT, prompts, metadata: { run: 'g' }, keep_alive: '10m' } });
  assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
  assert.equal(submitted.body.total_items, 9);
  const status = await waitForStatus(url, submitted.body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed');
  assert.equal(status.job_type, 'generate');
  assert.equal(status.progress.completed_items, 9);
  assert.equal(status.metadata.run, 'g');
  const results = (await call(`${url}/api/batch/results/${submitted.body.job_id}`)).body;
  assert.deepEqual(results.errors, []);
  assert.equal(results.results.length, 9);
  for (const [i, item] of results.results.entries()) {
    const expected = await direct(sim.url, '/api/generate', { prompt: prompts[i] });
    assert.equal(item.index, i);
    assert.equal(item.response, expected.response);
    assert.equal(item.done_reason, 'stop');
    assert.equal(item.eval_count, 5);
    assert.equal(typeof item.prompt_eval_count, 'number');
    assert.equal(typeof item.total_duration, 'number');
    assert.ok(!('embedding' in item));
  }
  assert.ok(sim.stats().maxGenerating <= 2, 'never more than parallel=2 at once on the node');
  const page = (await call(`${url}/api/batch/results/${submitted.body.job_id}?offset=3&limit=2`)).body;
  assert.deepEqual(page.results, results.results.slice(3, 5));
  const ndjson = await fetch(`${url}/api/batch/results/${submitted.body.job_id}?format=ndjson`);
  const lines = (await ndjson.text()).trimEnd().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(lines.filter((l) => 'index' in l), results.results);
  const listed = (await call(`${url}/api/batch/jobs`)).body;
  assert.equal(listed.jobs[0].job_type, 'generate');
});

test('a chat job: both shapes, job options under item options, per-item errors, retry', async (t) => {
  const sim = await startSim(t, { models: MODELS, replyTokens: 6 });
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const conversations = [[{ role: 'user', content: 'hello' }], [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }]];
  const short = await call(`${url}/api/batch/chat`, { body: { model: CHAT, conversations, options: { num_predict: 2 } } });
  assert.equal(short.status, 200);
  await waitForStatus(url, short.body.job_id, ['completed']);
  const shortResults = (await call(`${url}/api/batch/results/${short.body.job_id}`)).body.results;
  assert.deepEqual(shortResults.map((r: any) => [r.index, r.done_reason, r.eval_count, r.message.role]), [[0, 'length', 2, 'assistant'], [1, 'length', 2, 'assistant']]);
  const expected = await direct(sim.url, '/api/chat', { messages: conversations[1], options: { num_predict: 2 } });
  assert.equal(shortResults[1].message.content, expected.message.content);

  const requests = [{ messages: conversations[0], options: { num_predict: 4 } }, { messages: conversations[1] }];
  const full = await call(`${url}/api/batch/chat`, { body: { model: CHAT, requests, options: { num_predict: 3 } } });
  await waitForStatus(url, full.body.job_id, ['completed']);
  const fullResults = (await call(`${url}/api/batch/results/${full.body.job_id}`)).body.results;
  assert.deepEqual(fullResults.map((r: any) => r.eval_count), [4, 3], 'an item option wins over the job option');

  // The node loses the model mid-way: items fail with a code, the job still ends, and a retry re-runs only them.
  sim.configure({ rejectModels: [CHAT] });
  const doomed = await call(`${url}/api/batch/chat`, { body: { model: CHAT, conversations } });
  const failed = await waitForStatus(url, doomed.body.job_id, ['completed', 'failed']);
  assert.equal(failed.progress.failed_items, 2);
  const failedResults = (await call(`${url}/api/batch/results/${doomed.body.job_id}`)).body;
  assert.deepEqual(failedResults.results.map((r: any) => Object.keys(r).sort()), [['code', 'error', 'index'], ['code', 'error', 'index']]);
  assert.equal(failedResults.results[0].code, 'MODEL_NOT_FOUND');
  assert.equal(failedResults.errors.length, 2);
  sim.configure({ rejectModels: [] });
  await waitFor(async () => ((await call(`${url}/api/tags`)).body.models.some((m: any) => m.name.startsWith(CHAT)) ? true : undefined), 'the model to be listed again');
  const retry = await call(`${url}/api/batch/jobs/${doomed.body.job_id}/retry`, { method: 'POST' });
  assert.equal(retry.status, 200, JSON.stringify(retry.body));
  const retried = await waitForStatus(url, retry.body.job_id, ['completed', 'failed']);
  assert.equal(retried.status, 'completed');
  assert.equal(retried.job_type, 'chat');
  assert.equal((await call(`${url}/api/batch/results/${retry.body.job_id}`)).body.results[1].message.content, (await direct(sim.url, '/api/chat', { messages: conversations[1] })).message.content);
});

test('submission errors name the field and the item', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const { url } = await startTestGateway(t, { backend: [sim.url], maxBatchDocuments: '3' });
  const cases: [string, unknown, string, RegExp][] = [
    ['generate', [1], 'INVALID_BODY', /JSON object/],
    ['generate', { model: CHAT }, 'INVALID_BODY', /exactly one of 'prompts' and 'requests'/],
    ['generate', { model: CHAT, prompts: ['a'], requests: [{ prompt: 'a' }] }, 'INVALID_BODY', /exactly one/],
    ['generate', { model: '', prompts: ['a'] }, 'INVALID_MODEL', /model/],
    ['generate', { model: CHAT, prompts: [] }, 'NO_DOCUMENTS', /prompts/],
    ['generate', { model: CHAT, prompts: ['a', 'b', 'c', 'd'] }, 'BATCH_TOO_LARGE', /maximum of 3/],
    ['generate', { model: CHAT, prompts: ['a', 7] }, 'INVALID_DOCUMENT', /prompts\[1\]/],
    ['generate', { model: CHAT, requests: [{ prompt: 'a', temperature: 1 }] }, 'INVALID_DOCUMENT', /requests\[0\] has an unknown field 'temperature'/],
    ['generate', { model: CHAT, requests: [{ prompt: 'a', format: 3 }] }, 'INVALID_DOCUMENT', /requests\[0\]\.format/],
    ['generate', { model: CHAT, prompts: ['a'], options: 'hot' }, 'INVALID_OPTIONS', /options/],
    ['generate', { model: CHAT, prompts: ['a'], keep_alive: {} }, 'INVALID_OPTIONS', /keep_alive/],
    ['generate', { model: CHAT, prompts: ['a'], metadata: [] }, 'INVALID_METADATA', /metadata/],
    ['chat', { model: CHAT, conversations: [[{ role: 'user', content: 'a' }], []] }, 'INVALID_DOCUMENT', /conversations\[1\]/],
    ['chat', { model: CHAT, conversations: [[{ role: 'robot', content: 'a' }]] }, 'INVALID_DOCUMENT', /conversations\[0\]\[0\]/],
    ['chat', { model: CHAT, requests: [{ messages: [{ role: 'user', content: 5 }] }] }, 'INVALID_DOCUMENT', /requests\[0\]\.messages\[0\]\.content/],
    ['chat', { model: 'nope', conversations: [[{ role: 'user', content: 'a' }]] }, 'MODEL_NOT_FOUND', /nope/],
  ];
  for (const [kind, body, code, detail] of cases) {
    const answer = await call(`${url}/api/batch/${kind}`, { body });
    assert.equal(answer.status, 400, `${kind} ${JSON.stringify(body)}`);
    assert.equal(answer.body.code, code, `${kind} ${JSON.stringify(body)}: ${answer.body.detail}`);
    assert.match(answer.body.detail, detail);
  }
  assert.equal(sim.stats().generateCalls + sim.stats().chatCalls, 0);
});

test('cancel of a running chat job: calls stop, unprocessed items answer CANCELLED; embed jobs and sync calls run beside it', async (t) => {
  const sim = await startSim(t, { models: MODELS, replyTokens: 2, delayPerTokenMs: 60_000, generateParallel: 4 });
  const { url } = await startTestGateway(t, { backend: [`${sim.url}?parallel=2`] });
  const conversations = Array.from({ length: 6 }, (_, i) => [{ role: 'user', content: `c${i}` }]);
  const job = (await call(`${url}/api/batch/chat`, { body: { model: CHAT, conversations } })).body;
  await waitFor(() => (sim.stats().generating === 2 ? true : undefined), 'both generation slots in use');
  // Every generation slot is held for minutes: embedding work is not behind them.
  const embedJob = (await call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: ['a', 'b', 'c'] } })).body;
  assert.equal((await waitForStatus(url, embedJob.job_id, ['completed'])).progress.completed_items, 3);
  assert.equal((await call(`${url}/api/embed`, { body: { model: MODEL, input: 'x' } })).status, 200);
  assert.equal((await call(`${url}/api/batch/jobs/${job.job_id}`, { method: 'DELETE' })).status, 200);
  await waitFor(() => (sim.stats().generating === 0 ? true : undefined), 'the calls in flight to be aborted');
  const results = (await call(`${url}/api/batch/results/${job.job_id}`)).body;
  assert.equal(results.status, 'cancelled');
  assert.equal(results.results.length, 6);
  assert.ok(results.results.every((r: any) => r.code === 'CANCELLED' && !('message' in r)));
});

test('kill -9 mid-job: a generate job resumes after a restart and completes with every answer', async (t) => {
  const sim = await startSim(t, { models: MODELS, replyTokens: 3, delayPerTokenMs: 20 });
  const dataDir = tempDir(t);
  const args = ['--backend', `${sim.url}?parallel=1`, '--data-dir', dataDir];
  const prompts = Array.from({ length: 30 }, (_, i) => `crash prompt ${i}`);
  const first = await spawnGateway(t, args);
  const { body } = await call(`${first.url}/api/batch/generate`, { body: { model: CHAT, prompts } });
  await waitFor(async () => ((await call(`${first.url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 5 ? true : undefined), 'progress before the crash');
  await first.kill9();
  const second = await spawnGateway(t, args);
  const done = await waitForStatus(second.url, body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 30);
  const results = (await call(`${second.url}/api/batch/results/${body.job_id}`)).body.results;
  for (const [i, item] of results.entries()) assert.equal(item.response, (await direct(sim.url, '/api/generate', { prompt: prompts[i] })).response, `item ${i}`);
  await second.stop();
});
