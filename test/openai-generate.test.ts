/** Sync generation: /v1/chat/completions and /v1/completions through the official `openai` client, and generation slots. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseBackends, resolveConfig } from '../src/config.js';
import { call, MODEL, startSim, startTestGateway, waitFor } from './helpers.js';
import { apiError, openaiClient } from './openaiClient.js';

const CHAT = 'llama3.2';
const MODELS = { [CHAT]: null, [MODEL]: null };

test('chat.completions and completions, whole and streamed, answer what the node answers', async (t) => {
  const sim = await startSim(t, { models: MODELS, replyTokens: 6 });
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const client = openaiClient(url);
  const messages = [{ role: 'user' as const, content: 'Say something' }];

  const whole = await client.chat.completions.create({ model: CHAT, messages });
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0]!.finish_reason, 'stop');
  const direct = (await call(`${sim.url}/v1/chat/completions`, { body: { model: CHAT, messages } })).body;
  assert.equal(whole.choices[0]!.message.content, direct.choices[0].message.content);
  assert.equal(whole.usage?.completion_tokens, 6);

  let streamed = '';
  let chunks = 0;
  for await (const chunk of await client.chat.completions.create({ model: CHAT, messages, stream: true })) {
    chunks++;
    streamed += chunk.choices[0]?.delta.content ?? '';
  }
  assert.equal(streamed, whole.choices[0]!.message.content);
  assert.equal(chunks, 7);

  const completion = await client.completions.create({ model: CHAT, prompt: 'Once upon a time', max_tokens: 2 });
  assert.equal(completion.object, 'text_completion');
  assert.equal(completion.choices[0]!.finish_reason, 'length');
  let text = '';
  for await (const chunk of await client.completions.create({ model: CHAT, prompt: 'Once upon a time', max_tokens: 2, stream: true })) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, completion.choices[0]!.text);
  assert.equal(sim.stats().openaiChatCalls, 3);
  assert.equal(sim.stats().openaiCompletionCalls, 2);
});

test('validation errors, unknown models and embed-only models answer in the OpenAI shape', async (t) => {
  const sim = await startSim(t, { models: MODELS });
  const { url } = await startTestGateway(t, { backend: [sim.url, 'embedded'] });
  const client = openaiClient(url);

  const noMessages = await apiError(client.chat.completions.create({ model: CHAT, messages: [] }));
  assert.equal(noMessages.status, 400);
  assert.equal(noMessages.code, 'INVALID_INPUT');
  assert.equal(noMessages.param, 'messages');
  const badRole = await call(`${url}/v1/chat/completions`, { body: { model: CHAT, messages: [{ content: 'x' }] } });
  assert.equal(badRole.status, 400);
  assert.equal(badRole.body.error.param, 'messages[0]');
  const noPrompt = await call(`${url}/v1/completions`, { body: { model: CHAT } });
  assert.equal(noPrompt.status, 400);
  assert.equal(noPrompt.body.error.code, 'INVALID_INPUT');
  const twoChoices = await call(`${url}/v1/completions`, { body: { model: CHAT, prompt: 'x', n: 2 } });
  assert.equal(twoChoices.body.error.param, 'n');
  const unknown = await apiError(client.chat.completions.create({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }));
  assert.equal(unknown.status, 404);
  assert.equal(unknown.code, 'MODEL_NOT_FOUND');
  const embedOnly = await apiError(client.completions.create({ model: 'use-lite', prompt: 'x' }));
  assert.equal(embedOnly.status, 400);
  assert.equal(embedOnly.code, 'UNSUPPORTED_OPERATION');
  assert.equal(sim.stats().openaiChatCalls + sim.stats().openaiCompletionCalls, 0);
});

test('a node gets at most `parallel` generations at once, and embed calls are not held up by them', async (t) => {
  const sim = await startSim(t, { models: MODELS, generateParallel: 8, replyTokens: 2, delayPerTokenMs: 60_000 });
  const { url } = await startTestGateway(t, { backend: [`${sim.url}?parallel=2`] });
  const controller = new AbortController();
  const calls = [1, 2, 3].map((i) =>
    fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: CHAT, prompt: `p${i}` }), signal: controller.signal }).catch(() => undefined),
  );
  t.after(() => controller.abort());
  const backend = await waitFor(async () => {
    const node = (await call(`${url}/api/stats`)).body.backends[0];
    return node.generation_in_flight === 2 && sim.stats().generating === 2 ? node : undefined;
  }, 'both generation slots in use');
  assert.equal(backend.generation_parallel, 2);
  assert.equal(sim.stats().generateQueued, 0, 'the third call waits in the gateway, not on the node');
  // Every generation slot is busy for a minute: an embed call still goes through at once.
  const embed = await call(`${url}/api/embed`, { body: { model: MODEL, input: ['a', 'b'] } });
  assert.equal(embed.status, 200);
  assert.equal(embed.body.embeddings.length, 2);
  assert.equal(sim.stats().generating, 2);
  controller.abort();
  await Promise.all(calls);
  await waitFor(async () => ((await call(`${url}/api/stats`)).body.backends[0].generation_in_flight === 0 ? true : undefined), 'the slots to come back');
});

test('--backend URL?parallel=N sets the generation slots and is taken off the URL; bad values are refused', () => {
  assert.deepEqual(parseBackends(['http://127.0.0.1:11434?parallel=4']), [{ kind: 'ollama', url: 'http://127.0.0.1:11434', parallel: 4 }]);
  assert.deepEqual(parseBackends(['openai+http://127.0.0.1:8000/v1?parallel=2']), [{ kind: 'openai', url: 'http://127.0.0.1:8000/v1', parallel: 2 }]);
  assert.deepEqual(parseBackends(['http://127.0.0.1:11434']), [{ kind: 'ollama', url: 'http://127.0.0.1:11434' }]);
  for (const bad of ['http://h:1?parallel=-1', 'http://h:1?parallel=x', 'http://h:1?parallel=2000']) {
    assert.throws(() => parseBackends([bad]), (error: unknown) => error instanceof ConfigError && /parallel must be an integer/.test(error.message));
  }
  assert.equal(resolveConfig({}, {}).generationTimeoutMs, 600_000);
  assert.equal(resolveConfig({ generationTimeout: '30' }, {}).generationTimeoutMs, 30_000);
});
