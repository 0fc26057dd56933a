/** The OpenAI-compatible /v1 API on the gateway, driven by the official `openai` npm client. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { simVector } from '../src/sim/index.js';
import { call, docs, MODEL, startSim, startTestGateway } from './helpers.js';
import { apiError, openaiClient } from './openaiClient.js';

const DIMS = 768;

function assertVector(actual: ArrayLike<number>, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (Math.fround(actual[i] as number) !== expected[i]) assert.fail(`${what}: component ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

test('embeddings.create: base64 (the SDK default) and float give the node vectors', async (t) => {
  const sim = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sim.url], chunkSize: '16' });
  const client = openaiClient(url);

  const viaBase64 = await client.embeddings.create({ model: MODEL, input: 'The cat sat on the mat.' });
  assert.equal(viaBase64.object, 'list');
  assert.equal(viaBase64.model, MODEL);
  assert.equal(viaBase64.data.length, 1);
  assert.equal(viaBase64.data[0]!.index, 0);
  assertVector(viaBase64.data[0]!.embedding, simVector(MODEL, 'The cat sat on the mat.', DIMS), 'base64');
  assert.ok(viaBase64.usage.prompt_tokens > 0);
  assert.equal(viaBase64.usage.total_tokens, viaBase64.usage.prompt_tokens);

  const texts = docs(40, 'openai');
  const viaFloat = await client.embeddings.create({ model: MODEL, input: texts, encoding_format: 'float' });
  assert.equal(viaFloat.data.length, 40);
  viaFloat.data.forEach((item, i) => {
    assert.equal(item.index, i);
    assert.equal(item.object, 'embedding');
    assertVector(item.embedding, simVector(MODEL, texts[i]!, DIMS), `float ${i}`);
  });
  const base64Many = await client.embeddings.create({ model: MODEL, input: texts });
  base64Many.data.forEach((item, i) => assert.deepEqual(item.embedding, viaFloat.data[i]!.embedding.map(Math.fround), `base64 ${i} equals float ${i}`));
  assert.equal(sim.stats().embedCalls, 1 + 3 + 3, 'chunks of 16');

  // The raw wire: base64 is little-endian float32.
  const raw = await call(`${url}/v1/embeddings`, { body: { model: MODEL, input: ['abc'], encoding_format: 'base64' } });
  const bytes = Buffer.from(raw.body.data[0].embedding as string, 'base64');
  assert.equal(bytes.length, DIMS * 4);
  assert.equal(bytes.readFloatLE(0), simVector(MODEL, 'abc', DIMS)[0]);

  const small = await client.embeddings.create({ model: MODEL, input: 'short', dimensions: 64, encoding_format: 'float' });
  assert.equal(small.data[0]!.embedding.length, 64);
  assert.equal(sim.stats().lastEmbed?.dimensions, 64);
});

test('models.list and models.retrieve', async (t) => {
  const sim = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const client = openaiClient(url);
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  assert.deepEqual(ids, ['all-minilm:latest', 'mxbai-embed-large:latest', 'nomic-embed-text:latest']);
  const one = await client.models.retrieve(MODEL);
  assert.equal(one.id, 'nomic-embed-text:latest');
  assert.equal(one.object, 'model');
  const missing = await apiError(client.models.retrieve('nope'));
  assert.equal(missing.status, 404);
});

test("errors answer in OpenAI's shape", async (t) => {
  const sim = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sim.url], maxBatchDocuments: '5' });
  const client = openaiClient(url);

  const unknown = await apiError(client.embeddings.create({ model: 'no-such-model', input: 'x' }));
  assert.ok(unknown instanceof OpenAI.NotFoundError);
  assert.equal(unknown.code, 'MODEL_NOT_FOUND');
  assert.equal(unknown.type, 'invalid_request_error');
  assert.equal(unknown.param, 'model');
  assert.match(unknown.message, /model "no-such-model" not found/);

  const cases: [string, { body?: unknown; rawBody?: string; method?: string }, number, string][] = [
    ['/v1/embeddings', { rawBody: '{"model"' }, 400, 'INVALID_JSON'],
    ['/v1/embeddings', { body: 'text' }, 400, 'INVALID_BODY'],
    ['/v1/embeddings', { body: { input: 'x' } }, 400, 'INVALID_MODEL'],
    ['/v1/embeddings', { body: { model: MODEL } }, 400, 'INVALID_INPUT'],
    ['/v1/embeddings', { body: { model: MODEL, input: '' } }, 400, 'INVALID_INPUT'],
    ['/v1/embeddings', { body: { model: MODEL, input: [] } }, 400, 'INVALID_INPUT'],
    ['/v1/embeddings', { body: { model: MODEL, input: [1, 2, 3] } }, 400, 'INVALID_INPUT'],
    ['/v1/embeddings', { body: { model: MODEL, input: 'x', encoding_format: 'int8' } }, 400, 'INVALID_OPTIONS'],
    ['/v1/embeddings', { body: { model: MODEL, input: 'x', dimensions: 0 } }, 400, 'INVALID_OPTIONS'],
    ['/v1/embeddings', { body: { model: MODEL, input: docs(6) } }, 400, 'BATCH_TOO_LARGE'],
    ['/v1/no-such-route', {}, 404, 'NOT_FOUND'],
  ];
  for (const [path, init, status, code] of cases) {
    const answer = await call(`${url}${path}`, init);
    const what = `${path} ${JSON.stringify(init).slice(0, 80)}`;
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
    assert.deepEqual(Object.keys(answer.body), ['error'], what);
    assert.equal(answer.body.error.code, code, what);
    assert.equal(typeof answer.body.error.message, 'string', what);
    assert.equal(answer.body.error.type, 'invalid_request_error', what);
  }
  const bad = await apiError(client.embeddings.create({ model: MODEL, input: [] }));
  assert.ok(bad instanceof OpenAI.BadRequestError);

  await sim.close();
  const down = await call(`${url}/v1/embeddings`, { body: { model: MODEL, input: 'x' } });
  assert.equal(down.status, 503);
  assert.equal(down.body.error.type, 'server_error');
  assert.equal(down.body.error.code, 'BACKEND_UNAVAILABLE');
});

test('the embedded model serves /v1/embeddings and /api/embed alike', async (t) => {
  const { url } = await startTestGateway(t, {});
  const client = openaiClient(url);
  const viaOpenAI = await client.embeddings.create({ model: 'use-lite', input: ['hello world', 'goodbye'] });
  assert.equal(viaOpenAI.data.length, 2);
  assert.equal(viaOpenAI.data[0]!.embedding.length, 512);
  const viaOllama = await call(`${url}/api/embed`, { body: { model: 'use-lite:latest', input: 'hello world' } });
  assert.equal(viaOllama.status, 200);
  assertVector(viaOllama.body.embeddings[0], Float32Array.from(viaOpenAI.data[0]!.embedding), 'same vector both ways');
});
