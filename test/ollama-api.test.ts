/**
 * The Ollama-compatible sync API, driven by the official `ollama` npm client pointed at the
 * gateway, in front of simulated nodes (and a scripted node for streaming).
 */
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { Ollama, type ChatResponse } from 'ollama';
import { OLLAMA_API_VERSION } from '../src/http/routes/ollama.js';
import { simVector } from '../src/sim/index.js';
import { VERSION } from '../src/version.js';
import { call, docs, MODEL, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

const DIMS = 768;

function assertVector(actual: ArrayLike<number>, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (Math.fround(actual[i] as number) !== expected[i]) assert.fail(`${what}: component ${i} is ${actual[i]}, expected ${expected[i]}`);
  }
}

async function responseError(promise: Promise<unknown>): Promise<{ error: string; status_code: number }> {
  try {
    await promise;
  } catch (error) {
    return error as { error: string; status_code: number };
  }
  return assert.fail('expected the call to fail');
}

test('embed (string and list), legacy embeddings, tags, ps and version through the ollama client', async (t) => {
  const a = await startSim(t);
  const b = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [a.url, b.url, 'embedded'], chunkSize: '10' });
  const ollama = new Ollama({ host: url });

  const one = await ollama.embed({ model: MODEL, input: 'How do I reset my password?' });
  assert.equal(one.model, MODEL);
  assert.equal(one.embeddings.length, 1);
  assertVector(one.embeddings[0]!, simVector(MODEL, 'How do I reset my password?', DIMS), 'string input');
  assert.ok(one.prompt_eval_count > 0);
  assert.ok(one.total_duration > 0);
  assert.equal(typeof one.load_duration, 'number');

  // 150 inputs, chunk size 10: 15 calls spread over both nodes, answered in order.
  const texts = docs(150, 'sync');
  const many = await ollama.embed({ model: MODEL, input: texts });
  assert.equal(many.embeddings.length, 150);
  texts.forEach((text, i) => assertVector(many.embeddings[i]!, simVector(MODEL, text, DIMS), `input[${i}]`));
  assert.ok(a.stats().embedCalls > 0 && b.stats().embedCalls > 0, 'both nodes served chunks');
  assert.equal(a.stats().documents + b.stats().documents, 151);

  // truncate, dimensions, keep_alive and options reach the node.
  await ollama.embed({ model: MODEL, input: ['short'], truncate: false, dimensions: 256, keep_alive: '1m', options: { num_ctx: 512 } });
  const last = [a, b].map((n) => n.stats().lastEmbed).find((e) => e?.dimensions === 256);
  assert.ok(last, 'a node saw the call');
  assert.equal(last.truncate, false);
  assert.equal(last.keepAlive, '1m');
  assert.deepEqual(last.options, { num_ctx: 512 });

  const legacy = await ollama.embeddings({ model: MODEL, prompt: 'legacy prompt' });
  assertVector(legacy.embedding, simVector(MODEL, 'legacy prompt', DIMS), 'legacy');
  assert.deepEqual((await ollama.embeddings({ model: MODEL, prompt: '' })).embedding, []);
  assert.deepEqual((await ollama.embed({ model: MODEL, input: [] })).embeddings, []);

  const tags = await ollama.list();
  const names = tags.models.map((m) => m.name);
  for (const name of ['nomic-embed-text:latest', 'mxbai-embed-large:latest', 'all-minilm:latest', 'use-lite:latest']) assert.ok(names.includes(name), name);
  assert.equal(new Set(names).size, names.length, 'each model once');
  const nomic = tags.models.find((m) => m.name === 'nomic-embed-text:latest')!;
  assert.equal(nomic.details.family, 'nomic-bert', "the node's own details");
  assert.match(nomic.digest, /^[0-9a-f]{64}$/);

  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'nomic-embed-text:latest'));

  const version = await ollama.version();
  assert.equal(version.version, OLLAMA_API_VERSION);
  const raw = await call(`${url}/api/version`);
  assert.equal(raw.body.sollol_version, VERSION);
  assert.match(raw.body.sollol_instance, /^[0-9a-f-]{36}$/);
  assert.equal(raw.headers.get('x-sollol-version'), VERSION);
});

test('chat and generate are forwarded: streamed in parts ending with done, or as one JSON', async (t) => {
  const sim = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const ollama = new Ollama({ host: url });
  const messages = [{ role: 'user', content: 'Why is the sky blue?' }];

  const parts = [];
  for await (const part of await ollama.chat({ model: MODEL, messages, stream: true })) parts.push(part);
  assert.ok(parts.length > 3, `several parts, got ${parts.length}`);
  assert.ok(parts.slice(0, -1).every((p) => !p.done));
  const final = parts.at(-1)!;
  assert.equal(final.done, true);
  assert.equal(final.done_reason, 'stop');
  const streamed = parts.map((p) => p.message.content).join('');
  assert.match(streamed, /^Simulated reply from nomic-embed-text:latest/);

  const whole = await ollama.chat({ model: MODEL, messages, stream: false });
  assert.equal(whole.done, true);
  assert.equal(whole.message.role, 'assistant');
  assert.equal(whole.message.content, streamed);

  const generated = await ollama.generate({ model: MODEL, prompt: 'Why is the sky blue?' });
  assert.equal(generated.done, true);
  assert.equal(generated.response, streamed);
  const generatedParts = [];
  for await (const part of await ollama.generate({ model: MODEL, prompt: 'hi', stream: true })) generatedParts.push(part);
  assert.ok(generatedParts.length > 3 && generatedParts.at(-1)!.done);
  assert.equal(sim.stats().chatCalls, 2);
  assert.equal(sim.stats().generateCalls, 2);

  // Ollama streams by default: a raw call without `stream` gets NDJSON.
  const raw = await fetch(`${url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: MODEL, messages }) });
  assert.match(raw.headers.get('content-type') ?? '', /application\/x-ndjson/);
  const lines = (await raw.text()).trim().split('\n').map((l) => JSON.parse(l) as { done: boolean });
  assert.ok(lines.length > 3 && lines.at(-1)!.done);
});

/** A scripted Ollama node whose chat answer sends one part, then waits for `finish()` before the rest. */
async function startHeldStreamNode(t: TestContext): Promise<{ url: string; finish: () => void; finished: () => boolean; breakNext: () => void }> {
  const broken: boolean[] = [];
  let finish!: () => void;
  const held = new Promise<void>((resolve) => (finish = resolve));
  let done = false;
  const line = (content: string, last: boolean): string =>
    `${JSON.stringify({ model: 'chatty', created_at: new Date().toISOString(), message: { role: 'assistant', content }, done: last, ...(last ? { done_reason: 'stop' } : {}) })}\n`;
  const json = (res: ServerResponse, body: unknown): void => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    req.resume();
    if (req.url === '/api/version') return json(res, { version: '0.5.7' });
    if (req.url === '/api/tags') {
      const models = ['chatty:latest', 'broken:latest'].map((name) => ({ name, model: name, size: 1, digest: 'x', details: {} }));
      return json(res, { models });
    }
    if (req.url === '/api/chat') {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(line('Hello', false));
      // 'broken' dies after its first part (read the model from the request only to choose).
      if (broken.shift()) {
        setTimeout(() => res.destroy(), 20);
        return;
      }
      void held.then(() => {
        res.write(line(' world', false));
        done = true;
        res.end(line('', true));
      });
      return;
    }
    res.writeHead(404).end('404 page not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    finish();
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    finish: () => finish(),
    finished: () => done,
    breakNext: () => broken.push(true),
  };
}

test('a streamed answer is passed through part by part as the node sends it', async (t) => {
  const node = await startHeldStreamNode(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const ollama = new Ollama({ host: url });
  const stream = await ollama.chat({ model: 'chatty', messages: [{ role: 'user', content: 'hi' }], stream: true });
  const iterator = stream[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.equal((first.value as ChatResponse).message.content, 'Hello');
  assert.equal(node.finished(), false, 'the first part arrived while the node still held the rest');
  node.finish();
  const rest = [];
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(next.value as ChatResponse);
  assert.deepEqual(rest.map((p) => p.message.content), [' world', '']);
  assert.equal(rest.at(-1)!.done, true);
});

test('a stream the client drops or the node breaks gives its generation slot back; a break ends with an error line', async (t) => {
  const node = await startHeldStreamNode(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const ollama = new Ollama({ host: url });
  const inFlight = async (): Promise<number> => (await call(`${url}/api/stats`)).body.backends[0].generation_in_flight;
  const messages = [{ role: 'user', content: 'hi' }];

  const stream = await ollama.chat({ model: 'chatty', messages, stream: true });
  await stream[Symbol.asyncIterator]().next();
  assert.equal(await inFlight(), 1, 'the stream holds a slot');
  stream.abort();
  await waitFor(async () => ((await inFlight()) === 0 ? true : undefined), 'the slot to come back after the client left');

  node.breakNext();
  const parts: string[] = [];
  await assert.rejects(async () => {
    for await (const part of await ollama.chat({ model: 'broken', messages, stream: true })) parts.push(part.message.content);
  }, /Backend http:\/\/127\.0\.0\.1:\d+ stopped answering in the middle of the response/);
  assert.deepEqual(parts, ['Hello']);
  await waitFor(async () => ((await inFlight()) === 0 ? true : undefined), 'the slot to come back after the node broke');
});

test("errors answer in Ollama's shape: unknown model 404, bad bodies 400, embedded-only chat 400, node down 503", async (t) => {
  const sim = await startSim(t, { maxInputChars: 50 });
  const { url } = await startTestGateway(t, { backend: [sim.url, 'embedded'], maxBatchDocuments: '5' });
  const ollama = new Ollama({ host: url });

  const unknown = await responseError(ollama.embed({ model: 'no-such-model', input: 'x' }));
  assert.equal(unknown.status_code, 404);
  assert.equal(unknown.error, 'model "no-such-model" not found, try pulling it first');
  assert.equal((await responseError(ollama.chat({ model: 'no-such-model', messages: [] }))).status_code, 404);
  assert.equal((await responseError(ollama.embeddings({ model: 'no-such-model', prompt: 'x' }))).status_code, 404);

  const cases: [string, { body?: unknown; rawBody?: string }, number, string][] = [
    ['/api/embed', { body: { model: 'no-such-model', input: 'x' } }, 404, 'MODEL_NOT_FOUND'],
    ['/api/generate', { body: { model: 'no-such-model', prompt: 'x' } }, 404, 'MODEL_NOT_FOUND'],
    ['/api/embed', { rawBody: '{"model": ' }, 400, 'INVALID_JSON'],
    ['/api/embed', { rawBody: '' }, 400, 'INVALID_JSON'],
    ['/api/embed', { body: ['not', 'an', 'object'] }, 400, 'INVALID_BODY'],
    ['/api/embed', { body: { input: 'x' } }, 400, 'INVALID_MODEL'],
    ['/api/embed', { body: { model: MODEL, input: 5 } }, 400, 'INVALID_INPUT'],
    ['/api/embed', { body: { model: MODEL, input: ['a', 7] } }, 400, 'INVALID_INPUT'],
    ['/api/embed', { body: { model: MODEL, input: ['a', ''] } }, 400, 'INVALID_INPUT'],
    ['/api/embed', { body: { model: MODEL, input: 'x', truncate: 'yes' } }, 400, 'INVALID_OPTIONS'],
    ['/api/embed', { body: { model: MODEL, input: 'x', dimensions: -1 } }, 400, 'INVALID_OPTIONS'],
    ['/api/embed', { body: { model: MODEL, input: 'x', options: [1] } }, 400, 'INVALID_OPTIONS'],
    ['/api/embed', { body: { model: MODEL, input: docs(6) } }, 400, 'BATCH_TOO_LARGE'],
    ['/api/embed', { body: { model: MODEL, input: 'x'.repeat(60), truncate: false } }, 400, 'INPUT_REJECTED'],
    ['/api/embeddings', { body: { model: MODEL, prompt: 42 } }, 400, 'INVALID_INPUT'],
    ['/api/chat', { body: { messages: [] } }, 400, 'INVALID_MODEL'],
    ['/api/chat', { body: { model: 'use-lite', messages: [{ role: 'user', content: 'hi' }] } }, 400, 'UNSUPPORTED_OPERATION'],
    ['/api/generate', { body: { model: 'use-lite', prompt: 'hi' } }, 400, 'UNSUPPORTED_OPERATION'],
    ['/api/chat', { body: { model: MODEL, messages: 'not a list' } }, 400, 'INPUT_REJECTED'],
  ];
  for (const [path, init, status, code] of cases) {
    const answer = await call(`${url}${path}`, init);
    const what = `${path} ${JSON.stringify(init).slice(0, 80)}`;
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.code, code, what);
    assert.equal(typeof answer.body.error, 'string', what);
    assert.deepEqual(Object.keys(answer.body).sort(), ['code', 'error'], what);
  }
  const embeddedChat = await call(`${url}/api/chat`, { body: { model: 'use-lite', messages: [] } });
  assert.match(embeddedChat.body.error, /does not support chat: it is served only by the embedded backend/);
  // Batch routes keep their own shape.
  assert.deepEqual(Object.keys((await call(`${url}/api/batch/embed`, { rawBody: '{' })).body).sort(), ['code', 'detail']);

  await sim.close();
  const down = await call(`${url}/api/embed`, { body: { model: MODEL, input: 'x' } });
  assert.equal(down.status, 503, JSON.stringify(down.body));
  assert.equal(down.body.code, 'BACKEND_UNAVAILABLE');
});

test('the interactive lane: a sync embed finishes while a big batch job runs, and the job still completes', async (t) => {
  const sim = await startSim(t, { serial: true, delayPerCallMs: 2 });
  const { url } = await startTestGateway(t, { backend: [sim.url], chunkSize: '10' });
  const submitted = await submit(url, { model: MODEL, documents: docs(3000) });
  assert.equal(submitted.status, 200);
  const jobUrl = `${url}/api/batch/jobs/${submitted.body.job_id}`;
  const progress = async (): Promise<{ status: string; completed: number }> => {
    const answer = await call(jobUrl);
    return { status: answer.body.status, completed: answer.body.progress.completed_items };
  };
  await waitFor(async () => ((await progress()).completed >= 50 ? true : undefined), 'the batch job to be under way');

  const before = await progress();
  const sync = await call(`${url}/api/embed`, { body: { model: MODEL, input: 'an urgent question' } });
  const after = await progress();
  assert.equal(sync.status, 200);
  assertVector(sync.body.embeddings[0], simVector(MODEL, 'an urgent question', DIMS), 'sync vector');
  assert.equal(after.status, 'running', 'the sync call finished before the batch job');
  assert.ok(after.completed < 3000);
  // Served ahead of the queue: only the chunks already at the node finished meanwhile.
  assert.ok(after.completed - before.completed <= 100, `${after.completed - before.completed} documents finished during the sync call`);

  const job = await waitForStatus(url, submitted.body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(job.status, 'completed');
  assert.equal(job.progress.completed_items, 3000);
  assert.equal(job.progress.failed_items, 0);
  assert.equal(sim.stats().documents, 3001);
});
