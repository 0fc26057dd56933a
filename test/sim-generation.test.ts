import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { startSimNode, type SimNode, type SimOptions, type SimStats } from '../src/sim/index.js';

type Json = Record<string, unknown>;
const CHAT = 'llama3.2';

async function start(t: TestContext, options: Partial<SimOptions> = {}): Promise<SimNode> {
  const node = await startSimNode({ models: { [CHAT]: null, 'nomic-embed-text': null }, ...options });
  t.after(() => node.close());
  return node;
}

async function post(node: SimNode, path: string, body: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${node.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Json };
}

async function waitFor(node: SimNode, predicate: (stats: SimStats) => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!predicate(node.stats())) {
    assert.ok(Date.now() < deadline, `condition not met: ${JSON.stringify(node.stats())}`);
    await delay(2);
  }
}

describe('sim node: generation slots and cost', { timeout: 30_000 }, () => {
  it('runs at most generateParallel generations at once and queues the rest in order', async (t) => {
    const node = await start(t, { generateParallel: 2, replyTokens: 3, delayPerTokenMs: 60_000 });
    const controller = new AbortController();
    const calls = [0, 1, 2].map((i) =>
      fetch(`${node.url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: CHAT, prompt: `p${i}`, stream: false }), signal: controller.signal }).catch(() => undefined),
    );
    await waitFor(node, (s) => s.generating === 2 && s.generateQueued === 1);
    // Clients that go away free their slots and their place in the queue.
    controller.abort();
    await Promise.all(calls);
    await waitFor(node, (s) => s.generating === 0 && s.generateQueued === 0);
    assert.equal(node.stats().maxGenerating, 2);
  });

  it('replies deterministically with replyTokens tokens, capped by num_predict', async (t) => {
    const node = await start(t, { replyTokens: 7 });
    const a = await post(node, '/api/generate', { model: CHAT, prompt: 'same', stream: false });
    const b = await post(node, '/api/generate', { model: CHAT, prompt: 'same', stream: false });
    const c = await post(node, '/api/generate', { model: CHAT, prompt: 'other', stream: false });
    assert.equal(a.status, 200);
    assert.equal(a.json['response'], b.json['response']);
    assert.notEqual(a.json['response'], c.json['response']);
    assert.equal(a.json['eval_count'], 7);
    assert.equal(a.json['done_reason'], 'stop');
    const capped = await post(node, '/api/chat', { model: CHAT, messages: [{ role: 'user', content: 'x' }], stream: false, options: { num_predict: 3 } });
    assert.equal(capped.json['eval_count'], 3);
    assert.equal(capped.json['done_reason'], 'length');
    assert.equal(node.stats().generatedTokens, 7 * 3 + 3);
  });
});

describe('sim node: OpenAI-compatible chat and completions', { timeout: 30_000 }, () => {
  it('answers /v1/chat/completions as a chat.completion with usage', async (t) => {
    const node = await start(t, { replyTokens: 4 });
    const res = await post(node, '/v1/chat/completions', { model: CHAT, messages: [{ role: 'user', content: 'hello' }] });
    assert.equal(res.status, 200);
    assert.equal(res.json['object'], 'chat.completion');
    assert.equal(res.json['model'], CHAT);
    const choice = (res.json['choices'] as Json[])[0]!;
    assert.equal((choice['message'] as Json)['role'], 'assistant');
    assert.equal(choice['finish_reason'], 'stop');
    const native = await post(node, '/api/chat', { model: CHAT, messages: [{ role: 'user', content: 'hello' }], stream: false });
    assert.equal((choice['message'] as Json)['content'], (native.json['message'] as Json)['content']);
    assert.deepEqual(res.json['usage'], { prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    assert.equal(node.stats().openaiChatCalls, 1);
  });

  it('streams /v1/completions as server-sent events ending in [DONE]', async (t) => {
    const node = await start(t, { replyTokens: 5 });
    const res = await fetch(`${node.url}/v1/completions`, { method: 'POST', body: JSON.stringify({ model: CHAT, prompt: 'hi', stream: true, max_tokens: 3 }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = (await res.text()).split('\n\n').filter((e) => e !== '');
    assert.equal(events.at(-1), 'data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)) as Json);
    assert.equal(chunks.length, 4);
    assert.ok(chunks.every((c) => c['object'] === 'text_completion'));
    assert.equal((chunks.at(-1)!['choices'] as Json[])[0]!['finish_reason'], 'length');
  });

  it('answers errors in the OpenAI shape', async (t) => {
    const node = await start(t);
    const unknown = await post(node, '/v1/chat/completions', { model: 'nope', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(unknown.status, 404);
    assert.equal((unknown.json['error'] as Json)['type'], 'not_found_error');
    const bad = await post(node, '/v1/completions', { model: CHAT });
    assert.equal(bad.status, 400);
    assert.equal((bad.json['error'] as Json)['type'], 'invalid_request_error');
  });
});
