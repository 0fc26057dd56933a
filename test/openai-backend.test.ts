/** The OpenAI-compatible backend adapter against a fake server on loopback, alone and inside a gateway. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendError } from '../src/backends/errors.js';
import { createBackend } from '../src/backends/factory.js';
import { OpenAIBackend } from '../src/backends/openai.js';
import { simVector } from '../src/sim/index.js';
import { startFakeOpenAI } from './fakes/openaiServer.js';
import { call, docs, startTestGateway, submit, waitForStatus } from './helpers.js';

const MODEL = 'bge-small';
const KEY = 'sk-test-secret-123';

function assertVector(actual: ArrayLike<number>, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (Math.fround(actual[i] as number) !== expected[i]) assert.fail(`${what}: component ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

async function rejection(promise: Promise<unknown>): Promise<BackendError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BackendError, `expected a BackendError, got ${String(error)}`);
    return error;
  }
  return assert.fail('expected the call to fail');
}

test('probe lists /v1/models, embed posts float vectors in index order with the bearer key', async (t) => {
  const fake = await startFakeOpenAI(t, { models: { [MODEL]: 384, 'other-model': 128 }, apiKey: KEY, reverse: true });
  const backend = new OpenAIBackend({ url: fake.url, apiKey: KEY, timeoutMs: 5000 });
  t.after(() => backend.close());
  assert.equal(backend.kind, 'openai');
  assert.deepEqual(await backend.probe(), { healthy: true, models: [MODEL, 'other-model'] });

  // The pool names models the Ollama way; the server only knows its own id.
  const texts = ['alpha', 'beta', 'gamma'];
  const result = await backend.embed({ model: `${MODEL}:latest`, inputs: texts, options: { truncate: true, dimensions: 64 } });
  texts.forEach((text, i) => assertVector(result.vectors[i]!, simVector(MODEL, text, 64), text));
  assert.equal((result as { promptTokens?: number }).promptTokens, 9);
  const sent = fake.calls.at(-1)!;
  assert.equal(sent.path, '/v1/embeddings');
  assert.equal(sent.authorization, `Bearer ${KEY}`);
  assert.deepEqual(sent.body, { model: MODEL, input: texts, encoding_format: 'float', dimensions: 64 });
});

test('the key may come from the URL or the environment and never shows in the id or in errors', async (t) => {
  const fake = await startFakeOpenAI(t, { models: { [MODEL]: 8 }, apiKey: KEY });
  const port = new URL(fake.url).port;
  const fromUrl = createBackend({ kind: 'openai', url: `http://:${KEY}@127.0.0.1:${port}/v1` }, { embeddedThreads: 1, backendTimeoutMs: 5000 });
  t.after(() => fromUrl.close());
  assert.equal(fromUrl.id, `http://127.0.0.1:${port}/v1`);
  assert.equal((await fromUrl.probe()).healthy, true);
  assert.equal(fake.calls.at(-1)!.path, '/v1/models', 'a base ending in /v1 is not doubled');

  const previous = process.env.SOLLOL_OPENAI_API_KEY;
  process.env.SOLLOL_OPENAI_API_KEY = KEY;
  t.after(() => (previous === undefined ? delete process.env.SOLLOL_OPENAI_API_KEY : (process.env.SOLLOL_OPENAI_API_KEY = previous)));
  const fromEnv = createBackend({ kind: 'openai', url: fake.url }, { embeddedThreads: 1, backendTimeoutMs: 5000 });
  t.after(() => fromEnv.close());
  assert.equal((await fromEnv.probe()).healthy, true);
  assert.equal(fake.calls.at(-1)!.authorization, `Bearer ${KEY}`);

  // A wrong key: the server quotes it back; the gateway's messages must not.
  const wrong = 'sk-wrong-key-456';
  const bad = new OpenAIBackend({ url: `http://${wrong}@127.0.0.1:${port}`, timeoutMs: 5000 });
  t.after(() => bad.close());
  assert.ok(!bad.id.includes(wrong));
  const probe = await bad.probe();
  assert.equal(probe.healthy, false);
  assert.match(probe.error ?? '', /401/);
  const error = await rejection(bad.embed({ model: MODEL, inputs: ['x'], options: { truncate: true } }));
  assert.equal(error.code, 'BACKEND_UNAVAILABLE');
  assert.equal(error.status, 401);
  assert.ok(!error.message.includes(wrong), error.message);
  assert.ok(!(probe.error ?? '').includes(wrong));
});

test('status codes map to the same item codes as the Ollama adapter', async (t) => {
  const fake = await startFakeOpenAI(t, { models: { [MODEL]: 8 } });
  const backend = new OpenAIBackend({ url: fake.url, timeoutMs: 5000 });
  t.after(() => backend.close());
  await backend.probe();
  const expected: [number, string][] = [
    [400, 'INPUT_REJECTED'],
    [413, 'INPUT_REJECTED'],
    [422, 'INPUT_REJECTED'],
    [404, 'MODEL_NOT_FOUND'],
    [429, 'BACKEND_UNAVAILABLE'],
    [500, 'BACKEND_UNAVAILABLE'],
    [503, 'BACKEND_UNAVAILABLE'],
  ];
  for (const [status, code] of expected) {
    fake.options = { ...fake.options, failStatus: status };
    const error = await rejection(backend.embed({ model: MODEL, inputs: ['x'], options: { truncate: true } }));
    assert.equal(error.code, code, `status ${status}`);
    assert.equal(error.status, status);
    assert.match(error.message, new RegExp(`simulated ${status}`));
  }
  fake.options = { models: { [MODEL]: 8 } };
  assert.equal((await rejection(backend.embed({ model: 'missing', inputs: ['x'], options: { truncate: true } }))).code, 'MODEL_NOT_FOUND');
});

test('timeouts, aborts and unreachable servers', async (t) => {
  const fake = await startFakeOpenAI(t, { models: { [MODEL]: 8 }, hang: true });
  const backend = new OpenAIBackend({ url: fake.url, timeoutMs: 150 });
  t.after(() => backend.close());
  assert.equal((await rejection(backend.embed({ model: MODEL, inputs: ['x'], options: { truncate: true } }))).code, 'BACKEND_TIMEOUT');
  const controller = new AbortController();
  const pending = backend.embed({ model: MODEL, inputs: ['x'], options: { truncate: true }, signal: controller.signal });
  controller.abort();
  assert.equal((await rejection(pending)).code, 'CANCELLED');
  await fake.close();
  assert.equal((await rejection(backend.embed({ model: MODEL, inputs: ['x'], options: { truncate: true } }))).code, 'BACKEND_UNAVAILABLE');
  assert.equal((await backend.probe()).healthy, false);
});

test('an OpenAI-compatible backend in the pool serves a batch job end to end, and the sync APIs', async (t) => {
  const fake = await startFakeOpenAI(t, { models: { [MODEL]: 32 }, apiKey: KEY });
  const backend = `openai+http://${KEY}@${new URL(fake.url).host}`;
  const { url } = await startTestGateway(t, { backend: [backend], chunkSize: '10' });

  const documents = docs(45);
  const submitted = await submit(url, { model: MODEL, documents });
  assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
  const job = await waitForStatus(url, submitted.body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(job.status, 'completed');
  assert.equal(job.progress.completed_items, 45);
  assert.equal(job.progress.failed_items, 0);
  const results = await call(`${url}/api/batch/results/${submitted.body.job_id}`);
  assert.equal(results.body.dimensions, 32);
  documents.forEach((text, i) => assertVector(results.body.results[i].embedding, simVector(MODEL, text, 32), `results[${i}]`));
  const embedCalls = fake.calls.filter((c) => c.path === '/v1/embeddings');
  assert.equal(embedCalls.length, 5, 'chunks of 10');
  assert.ok(embedCalls.every((c) => c.authorization === `Bearer ${KEY}`));

  const stats = await call(`${url}/api/stats`);
  const node = stats.body.backends[0];
  assert.equal(node.kind, 'openai');
  assert.ok(!JSON.stringify(stats.body).includes(KEY), 'the key never shows in stats');

  const sync = await call(`${url}/api/embed`, { body: { model: MODEL, input: ['one', 'two'] } });
  assert.equal(sync.status, 200);
  assertVector(sync.body.embeddings[1], simVector(MODEL, 'two', 32), 'sync');
  assert.equal(sync.body.prompt_eval_count, 6, 'the backend-reported token count');
  const chat = await call(`${url}/api/chat`, { body: { model: MODEL, messages: [{ role: 'user', content: 'hi' }] } });
  assert.equal(chat.status, 400);
  assert.equal(chat.body.code, 'UNSUPPORTED_OPERATION');
  assert.match(chat.body.error, /does not support chat/);
});

test("a probe of a sollol gateway's own /v1 reports its instance (self-reference is refused)", async (t) => {
  const { url, gateway } = await startTestGateway(t, {});
  const backend = new OpenAIBackend({ url, timeoutMs: 5000 });
  t.after(() => backend.close());
  const probe = await backend.probe();
  const version = await call(`${url}/api/version`);
  assert.equal(probe.healthy, true);
  assert.equal(probe.sollolInstance, version.body.sollol_instance);
  assert.ok(gateway);
});
