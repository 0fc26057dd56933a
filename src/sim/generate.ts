/**
 * `POST /api/generate` and `POST /api/chat` with Ollama's shapes, streamed as NDJSON
 * by default (Ollama's `stream` defaults to true). The text is deterministic: these
 * routes exist so the gateway's pass-through can be tested, not to chat.
 */

import type { ServerResponse } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { pause } from './behaviour.js';
import { elapsedNs, HttpError, optionalString, requiredModel, sendJson, unknownModel } from './http.js';
import type { ServedModel } from './models.js';
import type { SimState } from './state.js';

type Kind = 'generate' | 'chat';

/** What a call asked for, reduced to what shapes the answer. */
interface Prompt {
  readonly kind: Kind;
  readonly requested: string;
  readonly text: string;
  readonly stream: boolean;
}

function parseStream(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value !== 'boolean') throw new HttpError(400, 'json: cannot unmarshal into field stream of type bool');
  return value;
}

/** All message contents joined; an empty result means "just load the model", as in Ollama. */
function chatText(messages: unknown): string {
  if (messages === undefined || messages === null) return '';
  if (!Array.isArray(messages)) throw new HttpError(400, 'json: cannot unmarshal into field messages of type []api.Message');
  let text = '';
  for (const message of messages) {
    if (typeof message !== 'object' || message === null) throw new HttpError(400, 'invalid message format');
    const { role, content } = message as { role?: unknown; content?: unknown };
    if (typeof role !== 'string') throw new HttpError(400, 'invalid message format');
    if (content !== undefined && typeof content !== 'string') throw new HttpError(400, 'invalid message format');
    text += content ?? '';
  }
  return text;
}

/** The reply, split into token-like pieces (a word with its leading space). */
function replyPieces(model: ServedModel, prompt: string): string[] {
  const reply = `Simulated reply from ${model.name}: the prompt had ${prompt.length} characters.`;
  return reply.split(/(?= )/);
}

/** `{"model","created_at",<message|response>` without the closing brace. */
function chunkHead(prompt: Prompt, content: string): string {
  const head = `{"model":${JSON.stringify(prompt.requested)},"created_at":"${new Date().toISOString()}"`;
  return prompt.kind === 'chat'
    ? `${head},"message":{"role":"assistant","content":${JSON.stringify(content)}}`
    : `${head},"response":${JSON.stringify(content)}`;
}

function finalChunk(prompt: Prompt, content: string, doneReason: string, stats: string): string {
  return `${chunkHead(prompt, content)},"done_reason":"${doneReason}","done":true${stats}}`;
}

function durations(startNs: bigint, loadNs: number, promptText: string, pieces: number): string {
  const total = elapsedNs(startNs);
  const promptTokens = Math.max(1, Math.ceil(promptText.length / 4));
  const evalNs = Math.max(0, total - loadNs);
  return (
    `,"total_duration":${total},"load_duration":${loadNs},"prompt_eval_count":${promptTokens}` +
    `,"prompt_eval_duration":0,"eval_count":${pieces},"eval_duration":${evalNs}`
  );
}

async function streamReply(prompt: Prompt, pieces: string[], res: ServerResponse, signal: AbortSignal, stats: () => string): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  for (const piece of pieces) {
    res.write(`${chunkHead(prompt, piece)},"done":false}\n`);
    // Yield between chunks so they leave as separate writes, like real token streaming.
    await nextTurn(undefined, { signal });
  }
  res.end(`${finalChunk(prompt, '', 'stop', stats())}\n`);
}

async function answer(state: SimState, prompt: Prompt, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const startNs = process.hrtime.bigint();
  const model = state.catalog.resolve(prompt.requested);
  if (!model) throw unknownModel(prompt.requested);
  state.touchModel(model);
  if (state.options.hang) await state.hang.wait(signal);
  const loadNs = elapsedNs(startNs);
  if (prompt.text === '') {
    sendJson(res, 200, finalChunk(prompt, '', 'load', ''));
    return;
  }
  await pause(state.options.delayPerCallMs, signal);
  const pieces = replyPieces(model, prompt.text);
  const stats = (): string => durations(startNs, loadNs, prompt.text, pieces.length);
  if (prompt.stream) {
    await streamReply(prompt, pieces, res, signal, stats);
  } else {
    sendJson(res, 200, finalChunk(prompt, pieces.join(''), 'stop', stats()));
  }
}

export async function handleGenerate(
  state: SimState,
  body: Record<string, unknown>,
  res: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  state.counters.generateCalls++;
  const prompt: Prompt = {
    kind: 'generate',
    requested: requiredModel(body),
    text: optionalString(body, 'prompt', ''),
    stream: parseStream(body['stream']),
  };
  await answer(state, prompt, res, signal);
}

export async function handleChat(
  state: SimState,
  body: Record<string, unknown>,
  res: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  state.counters.chatCalls++;
  const prompt: Prompt = {
    kind: 'chat',
    requested: requiredModel(body),
    text: chatText(body['messages']),
    stream: parseStream(body['stream']),
  };
  await answer(state, prompt, res, signal);
}
