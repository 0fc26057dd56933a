/**
 * The OpenAI Batch API's batches (/v1/batches) through the official `openai` client: embeddings,
 * chat and completion batches checked line by line against the sync routes' answers, every
 * route's validation errors, cancel of a running batch, keys, and a batch that survives kill -9.
 * Also run on Redis by distributed-contract-*.test.ts (the kill -9 case is SQLite's subprocess).
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { call, gatewaysOnRedis, MODEL, startSim, startTestGateway, tempDir, waitFor } from './helpers.js';
import { apiError, openaiClient as client } from './openaiClient.js';
import { deletePrefix, uniquePrefix } from './redisKeys.js';
import { testClient, testRedis } from './redisServer.js';
import { spawnGateway } from './subprocess.js';
import { SqliteBatchStore } from '../src/openaiBatch/batchStore.js';
import { simVector } from '../src/sim/index.js';

/**
 * Tests that edit a batch's row in batches.sqlite: registered only when the gateways run on
 * SQLite (the Redis pass of distributed-contract-*.test.ts does not list them at all).
 */
const sqliteOnly = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  if (!gatewaysOnRedis()) test(name, fn);
};

const CHAT = 'llama3.2';
const SLOW = 'slowchat';
const MODELS = { [CHAT]: null, [MODEL]: null, 'all-minilm': 384 };

const line = (id: string, url: string, body: unknown): string => JSON.stringify({ custom_id: id, method: 'POST', url, body });
const jsonl = (lines: string[]): Buffer => Buffer.from(`${lines.join('\n')}\n`);

async function upload(openai: OpenAI, lines: string[]): Promise<string> {
  return (await openai.files.create({ file: await toFile(jsonl(lines), 'batch.jsonl'), purpose: 'batch' })).id;
}

async function untilDone(openai: OpenAI, id: string, done = ['completed', 'failed', 'expired', 'cancelled']): Promise<OpenAI.Batches.Batch> {
  return waitFor(async () => {
    const batch = await openai.batches.retrieve(id);
    return done.includes(batch.status) ? batch : undefined;
  }, `batch ${id} to reach ${done.join('/')}`, 60_000);
}

async function fileLines(openai: OpenAI, id: string | null | undefined): Promise<any[]> {
  if (!id) return [];
  const text = await (await openai.files.content(id)).text();
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

/** A chat/completion body without what differs between two calls (its id and time). */
const stable = (body: any): any => ({ ...body, id: typeof body.id, created: typeof body.created });

test('an embeddings batch through the SDK: every output body is what POST /v1/embeddings answers', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const openai = client(url);
  const bodies: Record<string, any> = {
    one: { model: MODEL, input: 'a single text' },
    many: { model: MODEL, input: ['first', 'second', 'third'] },
    b64: { model: MODEL, input: ['base64 please'], encoding_format: 'base64' },
    other: { model: 'all-minilm', input: 'another model in the same batch' },
  };
  const fileId = await upload(openai, Object.entries(bodies).map(([id, body]) => line(id, '/v1/embeddings', body)));
  const created = await openai.batches.create({ input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h', metadata: { run: 'e1' } });
  assert.match(created.id, /^batch_[0-9a-f]{24}$/);
  assert.equal(created.object, 'batch');
  assert.equal(created.input_file_id, fileId);
  assert.deepEqual(created.metadata, { run: 'e1' });
  assert.ok(['validating', 'in_progress'].includes(created.status));
  assert.equal(created.request_counts?.total, 4);
  assert.equal(created.expires_at, created.created_at + 24 * 3600);

  const done = await untilDone(openai, created.id);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.request_counts, { total: 4, completed: 4, failed: 0 });
  assert.equal(done.error_file_id, null);
  for (const field of ['in_progress_at', 'finalizing_at', 'completed_at'] as const) assert.equal(typeof done[field], 'number', field);
  assert.ok(done.in_progress_at! <= done.finalizing_at! && done.finalizing_at! <= done.completed_at!);
  assert.equal(done.failed_at, null);
  assert.equal(done.cancelled_at, null);
  const output = await fileLines(openai, done.output_file_id);
  assert.deepEqual(output.map((l) => l.custom_id).sort(), Object.keys(bodies).sort());
  for (const out of output) {
    assert.match(out.id, /^batch_req_/);
    assert.equal(out.error, null);
    assert.equal(out.response.status_code, 200);
    assert.equal(typeof out.response.request_id, 'string');
    const sync = await call(`${url}/v1/embeddings`, { body: bodies[out.custom_id] });
    assert.equal(sync.status, 200);
    assert.deepEqual(out.response.body, sync.body, `line ${out.custom_id}`);
  }
  const outputFile = await openai.files.retrieve(done.output_file_id!);
  assert.equal(outputFile.purpose, 'batch_output');
});

test('chat and completion batches through the SDK: bodies are what the sync routes answer', async (t) => {
  const sim = await startSim(t, { models: MODELS, replyTokens: 5, generateParallel: 2 });
  const { url } = await startTestGateway(t, { backend: [`${sim.url}?parallel=2`] });
  const openai = client(url);
  const chats: Record<string, any> = {};
  for (let i = 0; i < 6; i++) chats[`c${i}`] = { model: CHAT, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `question ${i}` }] };
  chats.short = { model: CHAT, messages: [{ role: 'user', content: 'cut me off' }], max_tokens: 2 };
  const chatFile = await upload(openai, Object.entries(chats).map(([id, body]) => line(id, '/v1/chat/completions', body)));
  const chatBatch = await openai.batches.create({ input_file_id: chatFile, endpoint: '/v1/chat/completions', completion_window: '24h' });
  const completions: Record<string, any> = { p0: { model: CHAT, prompt: 'Once upon a time' }, p1: { model: CHAT, prompt: 'A short one', max_tokens: 3 } };
  const completionFile = await upload(openai, Object.entries(completions).map(([id, body]) => line(id, '/v1/completions', body)));
  const completionBatch = await openai.batches.create({ input_file_id: completionFile, endpoint: '/v1/completions', completion_window: '24h' });

  for (const [batch, bodies, route] of [[chatBatch, chats, '/v1/chat/completions'], [completionBatch, completions, '/v1/completions']] as const) {
    const done = await untilDone(openai, batch.id);
    assert.equal(done.status, 'completed');
    const total = Object.keys(bodies).length;
    assert.deepEqual(done.request_counts, { total, completed: total, failed: 0 });
    const output = await fileLines(openai, done.output_file_id);
    assert.equal(output.length, total);
    for (const out of output) {
      const sync = await call(`${url}${route}`, { body: bodies[out.custom_id] });
      assert.equal(sync.status, 200);
      assert.deepEqual(stable(out.response.body), stable(sync.body), `${route} line ${out.custom_id}`);
      assert.match(out.response.body.id, route === '/v1/completions' ? /^cmpl-/ : /^chatcmpl-/);
    }
    const short = output.find((o) => o.custom_id === 'short');
    if (short) assert.equal(short.response.body.choices[0].finish_reason, 'length');
  }
});

test('batch routes refuse what OpenAI refuses, in its error shape', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const openai = client(url);
  const chatFile = await upload(openai, [line('a', '/v1/chat/completions', { model: CHAT, messages: [{ role: 'user', content: 'x' }] })]);
  const create = (body: Record<string, unknown>) => call(`${url}/v1/batches`, { body: { input_file_id: chatFile, endpoint: '/v1/chat/completions', completion_window: '24h', ...body } });

  const unknownFile = await apiError(openai.batches.create({ input_file_id: 'file-nope', endpoint: '/v1/embeddings', completion_window: '24h' }));
  assert.equal(unknownFile.status, 404);
  assert.equal(unknownFile.code, 'FILE_NOT_FOUND');
  assert.equal(unknownFile.param, 'input_file_id');

  const endpoint = await create({ endpoint: '/v1/moderations' });
  assert.equal(endpoint.status, 400);
  assert.equal(endpoint.body.error.code, 'INVALID_BODY');
  assert.equal(endpoint.body.error.param, 'endpoint');
  assert.equal(endpoint.body.error.type, 'invalid_request_error');

  const window = await create({ completion_window: '48h' });
  assert.equal(window.status, 400);
  assert.equal(window.body.error.param, 'completion_window');

  for (const bad of [{ input_file_id: undefined }, { metadata: { k: 1 } }, { metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }]) {
    const answer = await create(bad);
    assert.equal(answer.status, 400, JSON.stringify(bad));
    assert.ok(answer.body.error.message.length > 0);
  }

  // A line whose url differs from the batch's endpoint: the batch is created and fails validation, naming the line.
  const mixed = await upload(openai, [line('e', '/v1/embeddings', { model: MODEL, input: 'x' }), line('c', '/v1/chat/completions', { model: CHAT, messages: [{ role: 'user', content: 'x' }] })]);
  const failed = await openai.batches.create({ input_file_id: mixed, endpoint: '/v1/embeddings', completion_window: '24h' });
  assert.equal(failed.status, 'failed');
  assert.equal(typeof failed.failed_at, 'number');
  assert.equal(failed.output_file_id, null);
  assert.deepEqual(failed.errors?.data?.map((e) => [e.code, e.line, e.param]), [['mismatched_url', 2, 'url']]);
  assert.equal((await openai.batches.retrieve(failed.id)).status, 'failed');

  // Wrong purpose: a batch's output file is not an input file.
  const ok = await openai.batches.create({ input_file_id: chatFile, endpoint: '/v1/chat/completions', completion_window: '24h' });
  const done = await untilDone(openai, ok.id);
  assert.equal(done.status, 'completed');
  const purpose = await apiError(openai.batches.create({ input_file_id: done.output_file_id!, endpoint: '/v1/chat/completions', completion_window: '24h' }));
  assert.equal(purpose.status, 400);
  assert.equal(purpose.code, 'INVALID_FILE');

  // Unknown batch, cancel of a finished one, list with pages.
  const missing = await apiError(openai.batches.retrieve('batch_nope'));
  assert.equal(missing.status, 404);
  assert.equal(missing.code, 'BATCH_NOT_FOUND');
  assert.equal((await apiError(openai.batches.cancel('batch_nope'))).status, 404);
  const notCancellable = await apiError(openai.batches.cancel(done.id));
  assert.equal(notCancellable.status, 409);
  assert.equal(notCancellable.code, 'BATCH_NOT_CANCELLABLE');

  const page = (await call(`${url}/v1/batches?limit=1`)).body;
  assert.equal(page.object, 'list');
  assert.deepEqual(page.data.map((b: any) => b.id), [ok.id], 'newest first');
  assert.equal(page.has_more, true);
  const next = (await call(`${url}/v1/batches?limit=1&after=${page.last_id}`)).body;
  assert.deepEqual(next.data.map((b: any) => b.id), [failed.id]);
  const all: string[] = [];
  for await (const batch of openai.batches.list({ limit: 2 })) all.push(batch.id);
  assert.deepEqual(all, [ok.id, failed.id]);
  assert.equal((await call(`${url}/v1/batches?limit=0`)).status, 400);
  assert.equal((await call(`${url}/v1/batches?limit=101`)).body.error.code, 'INVALID_LIMIT');
  const paths = (await call(`${url}/openapi.json`)).body.paths;
  for (const path of ['/v1/batches', '/v1/batches/{id}', '/v1/batches/{id}/cancel']) assert.ok(path in paths, `${path} in the OpenAPI description`);
  assert.deepEqual(paths['/v1/batches'].post.requestBody.content['application/json'].schema.required, ['input_file_id', 'endpoint', 'completion_window']);
});

test('a model no node serves fails its lines into the error file; the other lines complete', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const openai = client(url);
  const fileId = await upload(openai, [line('good', '/v1/embeddings', { model: MODEL, input: 'x' }), line('bad', '/v1/embeddings', { model: 'no-such-model', input: 'y' })]);
  const done = await untilDone(openai, (await openai.batches.create({ input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h' })).id);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.request_counts, { total: 2, completed: 1, failed: 1 });
  assert.deepEqual((await fileLines(openai, done.output_file_id)).map((l) => l.custom_id), ['good']);
  const errors = await fileLines(openai, done.error_file_id);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].custom_id, 'bad');
  assert.equal(errors[0].response.status_code, 404);
  assert.equal(errors[0].response.body.error.code, 'MODEL_NOT_FOUND');
});

test('cancel of a running batch: cancelling, then cancelled; finished lines in the output file, unstarted ones left out', async (t) => {
  const fast = await startSim(t, { models: { [CHAT]: null }, replyTokens: 3 });
  const hung = await startSim(t, { models: { [SLOW]: null }, hang: true });
  const { url } = await startTestGateway(t, { backend: [fast.url, hung.url] });
  const openai = client(url);
  const lines = [
    ...['f0', 'f1', 'f2'].map((id) => line(id, '/v1/chat/completions', { model: CHAT, messages: [{ role: 'user', content: id }] })),
    ...['s0', 's1'].map((id) => line(id, '/v1/chat/completions', { model: SLOW, messages: [{ role: 'user', content: id }] })),
  ];
  const batch = await openai.batches.create({ input_file_id: await upload(openai, lines), endpoint: '/v1/chat/completions', completion_window: '24h' });
  // The fast lines finish; the slow ones hang on their node (live request_counts say so).
  await waitFor(async () => ((await openai.batches.retrieve(batch.id)).request_counts?.completed === 3 ? true : undefined), 'the fast lines to finish');
  await waitFor(() => (hung.stats().hung > 0 ? true : undefined), 'a slow line to be in flight');
  const cancelling = await openai.batches.cancel(batch.id);
  assert.ok(['cancelling', 'cancelled'].includes(cancelling.status));
  assert.equal(typeof cancelling.cancelling_at, 'number');
  assert.equal((await openai.batches.cancel(batch.id)).id, batch.id, 'a second cancel is answered too');
  const done = await untilDone(openai, batch.id);
  assert.equal(done.status, 'cancelled');
  assert.equal(typeof done.cancelled_at, 'number');
  assert.equal(done.completed_at, null);
  const output = await fileLines(openai, done.output_file_id);
  assert.deepEqual(output.map((l) => l.custom_id).sort(), ['f0', 'f1', 'f2']);
  assert.equal(done.error_file_id, null, 'cancelled lines are left out');
  assert.deepEqual(done.request_counts, { total: 5, completed: 3, failed: 0 });
  await waitFor(() => (hung.stats().hung === 0 ? true : undefined), 'the hung calls to be aborted');
});

test('batches and their files belong to the key that made them', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const A = 'batch-key-a-0123456789abcdef';
  const B = 'batch-key-b-0123456789abcdef';
  const { url } = await startTestGateway(t, { backend: [sim.url], apiKey: [A, B] });
  const alice = client(url, A);
  const bob = client(url, B);
  const fileId = await upload(alice, [line('a', '/v1/embeddings', { model: MODEL, input: 'x' })]);
  assert.equal((await apiError(bob.batches.create({ input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h' }))).status, 404);
  const batch = await alice.batches.create({ input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h' });
  assert.equal((await apiError(bob.batches.retrieve(batch.id))).status, 404);
  assert.equal((await apiError(bob.batches.cancel(batch.id))).status, 404);
  assert.deepEqual((await call(`${url}/v1/batches`, { headers: { authorization: `Bearer ${B}` } })).body.data, []);
  const done = await untilDone(alice, batch.id);
  assert.equal(done.status, 'completed');
  assert.equal((await apiError(bob.files.content(done.output_file_id!))).status, 404);
  assert.equal((await fileLines(alice, done.output_file_id)).length, 1);
  assert.equal((await call(`${url}/v1/batches`)).status, 401);
});

async function killNineMidBatch(t: TestContext, storeArgs: string[]): Promise<void> {
  const sim = await startSim(t, { models: MODELS, replyTokens: 3, delayPerTokenMs: 20 });
  const dataDir = tempDir(t);
  const args = ['--backend', `${sim.url}?parallel=1`, '--data-dir', dataDir, ...storeArgs];
  const first = await spawnGateway(t, args);
  const openai = client(first.url);
  const ids = Array.from({ length: 20 }, (_, i) => `k${i}`);
  const fileId = await upload(openai, ids.map((id) => line(id, '/v1/chat/completions', { model: CHAT, messages: [{ role: 'user', content: id }] })));
  const batch = await openai.batches.create({ input_file_id: fileId, endpoint: '/v1/chat/completions', completion_window: '24h' });
  await waitFor(async () => ((await openai.batches.retrieve(batch.id)).request_counts?.completed ?? 0) >= 3 ? true : undefined, 'progress before the crash');
  await first.kill9();
  const second = await spawnGateway(t, args);
  const again = client(second.url);
  const done = await untilDone(again, batch.id);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.request_counts, { total: 20, completed: 20, failed: 0 });
  const output = await fileLines(again, done.output_file_id);
  assert.deepEqual(output.map((l) => l.custom_id).sort(), [...ids].sort());
  assert.ok(output.every((l) => l.response.status_code === 200 && l.response.body.object === 'chat.completion'));
  // Every answer once: the node ran each line at most twice (the one in flight at the kill again), never all again.
  assert.ok(sim.stats().chatCalls <= 21, `chat calls: ${sim.stats().chatCalls}`);
}

test('kill -9 mid-batch: the batch resumes after a restart and completes with every line', (t) => killNineMidBatch(t, []));

test('kill -9 mid-batch on Redis: the batch resumes after a restart', async (t) => {
  const server = await testRedis();
  if ('skip' in server) return t.skip(server.skip);
  const prefix = uniquePrefix('batches');
  t.after(async () => {
    const redis = testClient(server.url);
    await deletePrefix(redis, prefix);
    redis.disconnect();
    await server.stop();
  });
  await killNineMidBatch(t, ['--redis', server.url, '--redis-prefix', prefix]);
});

test('a model whose lines hold more items than --max-batch-documents runs as several jobs; one line over it fails the batch', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const { url } = await startTestGateway(t, { backend: [sim.url], maxBatchDocuments: '3' });
  const openai = client(url);
  // 9 inputs, at most 3 per job, cut at line boundaries: [a] [b c] [d] [e].
  const bodies: Record<string, any> = {
    a: { model: MODEL, input: ['1', '2'] },
    b: { model: MODEL, input: ['3', '4'] },
    c: { model: MODEL, input: '5' },
    d: { model: MODEL, input: ['6', '7', '8'] },
    e: { model: MODEL, input: ['9'] },
  };
  const fileId = await upload(openai, Object.entries(bodies).map(([id, body]) => line(id, '/v1/embeddings', body)));
  const created = await openai.batches.create({ input_file_id: fileId, endpoint: '/v1/embeddings', completion_window: '24h' });
  assert.notEqual(created.status, 'failed', JSON.stringify(created.errors));
  const done = await untilDone(openai, created.id);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.request_counts, { total: 5, completed: 5, failed: 0 });
  const output = await fileLines(openai, done.output_file_id);
  assert.deepEqual(output.map((l) => l.custom_id), ['a', 'b', 'c', 'd', 'e'], 'in input order');
  for (const out of output) {
    const sync = await call(`${url}/v1/embeddings`, { body: bodies[out.custom_id] });
    assert.deepEqual(out.response.body, sync.body, `line ${out.custom_id}`);
  }
  const jobs = (await call(`${url}/api/batch/jobs?limit=100`)).body.jobs as { metadata?: Record<string, unknown>; total_items?: number }[];
  const mine = jobs.filter((j) => j.metadata?.openai_batch === created.id);
  assert.equal(mine.length, 4, 'four jobs of at most 3 items');

  const tooBig = await upload(openai, [line('x', '/v1/embeddings', { model: MODEL, input: 'ok' }), line('y', '/v1/embeddings', { model: MODEL, input: ['1', '2', '3', '4'] })]);
  const failed = await openai.batches.create({ input_file_id: tooBig, endpoint: '/v1/embeddings', completion_window: '24h' });
  assert.equal(failed.status, 'failed');
  assert.deepEqual(failed.errors?.data?.map((e) => [e.code, e.line]), [['too_many_items', 2]]);
  assert.match(failed.errors!.data![0]!.message!, /The line "y" holds 4 inputs; one job takes at most 3/);
});

test('an embeddings batch over several result pages: every line\'s vectors, lines straddling pages included; over 50,000 inputs fails as OpenAI\'s does', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const { url } = await startTestGateway(t, { backend: [sim.url], maxBatchDocuments: '1500' });
  const openai = client(url);
  // 1,200 lines of 1 to 3 inputs (2,400 items): two jobs, each read back in pages of 1,000.
  const inputs = (i: number): string[] => Array.from({ length: 1 + (i % 3) }, (_, k) => `paged ${i}.${k}`);
  const lines = Array.from({ length: 1200 }, (_, i) => line(`l${i}`, '/v1/embeddings', { model: MODEL, input: inputs(i), ...(i % 5 === 0 ? { encoding_format: 'base64' } : {}) }));
  const created = await openai.batches.create({ input_file_id: await upload(openai, lines), endpoint: '/v1/embeddings', completion_window: '24h' });
  const done = await untilDone(openai, created.id);
  assert.equal(done.status, 'completed', JSON.stringify(done.errors));
  const output = await fileLines(openai, done.output_file_id);
  assert.equal(output.length, 1200);
  for (const out of output) {
    const i = Number(out.custom_id.slice(1));
    const data = out.response.body.data as { index: number; embedding: number[] | string }[];
    assert.equal(data.length, inputs(i).length, out.custom_id);
    data.forEach((d, k) => {
      const got = typeof d.embedding === 'string' ? new Float32Array(Uint8Array.from(Buffer.from(d.embedding, 'base64')).buffer) : Float32Array.from(d.embedding);
      assert.deepEqual(Array.from(got), Array.from(simVector(MODEL, inputs(i)[k]!, 768)), `${out.custom_id} input ${k}`);
    });
  }
  const tooMany = Array.from({ length: 25_001 }, (_, i) => line(`m${i}`, '/v1/embeddings', { model: MODEL, input: ['a', 'b'] }));
  const refused = await openai.batches.create({ input_file_id: await upload(openai, tooMany), endpoint: '/v1/embeddings', completion_window: '24h' });
  assert.equal(refused.status, 'failed');
  assert.match(refused.errors!.data![0]!.message!, /hold 50002 embedding inputs; an embeddings batch may hold at most 50000/);
});

sqliteOnly('a batch left validating by a gateway that died before starting its jobs is started by the finaliser', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const gw = await startTestGateway(t, { backend: [sim.url] });
  // SQLite only (on Redis, distributed-contract's runs, the store is not this file).
  const openai = client(gw.url);
  const fileId = await upload(openai, [line('a', '/v1/embeddings', { model: MODEL, input: 'left behind' })]);
  // What a gateway killed between storing the batch and submitting its jobs leaves in the store.
  const stale = Date.now() - 60_000;
  const store = new SqliteBatchStore(gw.dataDir);
  t.after(() => store.close());
  await store.put({
    id: 'batch_000000000000000000000abc',
    owner: 'anonymous',
    endpoint: '/v1/embeddings',
    inputFileId: fileId,
    completionWindow: '24h',
    status: 'validating',
    metadata: null,
    errors: [],
    outputFileId: null,
    errorFileId: null,
    times: { created: stale, expires: stale + 24 * 3600 * 1000 },
    counts: { total: 1, completed: 0, failed: 0 },
    jobs: [],
  });
  const done = await untilDone(openai, 'batch_000000000000000000000abc');
  assert.equal(done.status, 'completed');
  assert.equal(typeof done.in_progress_at, 'number');
  assert.deepEqual((await fileLines(openai, done.output_file_id)).map((l) => l.custom_id), ['a']);
});

sqliteOnly('a batch past its completion window expires: finished lines in the output file, the rest batch_expired in the error file', async (t) => {
  const fast = await startSim(t, { models: { [CHAT]: null }, replyTokens: 3 });
  const hung = await startSim(t, { models: { [SLOW]: null }, hang: true });
  const gw = await startTestGateway(t, { backend: [fast.url, hung.url] });
  const openai = client(gw.url);
  const lines = [line('f0', '/v1/chat/completions', { model: CHAT, messages: [{ role: 'user', content: 'f0' }] }), line('s0', '/v1/chat/completions', { model: SLOW, messages: [{ role: 'user', content: 's0' }] })];
  const batch = await openai.batches.create({ input_file_id: await upload(openai, lines), endpoint: '/v1/chat/completions', completion_window: '24h' });
  await waitFor(async () => ((await openai.batches.retrieve(batch.id)).request_counts?.completed === 1 ? true : undefined), 'the fast line to finish');
  await waitFor(() => (hung.stats().hung > 0 ? true : undefined), 'the slow line to be in flight');
  // The 24 h window cannot pass in a test: move the batch's deadline into the past in its store.
  const store = new SqliteBatchStore(gw.dataDir);
  t.after(() => store.close());
  assert.ok(await store.update(batch.id, ['in_progress'], { times: { expires: Date.now() - 1000 } }));
  const done = await untilDone(openai, batch.id);
  assert.equal(done.status, 'expired');
  assert.equal(typeof done.expired_at, 'number');
  assert.deepEqual((await fileLines(openai, done.output_file_id)).map((l) => l.custom_id), ['f0']);
  const errors = await fileLines(openai, done.error_file_id);
  assert.deepEqual(errors.map((l) => [l.custom_id, l.response, l.error?.code]), [['s0', null, 'batch_expired']]);
  assert.deepEqual(done.request_counts, { total: 2, completed: 1, failed: 1 });
  await waitFor(() => (hung.stats().hung === 0 ? true : undefined), 'the hung call to be aborted');
});
