/**
 * `POST /api/generate` and `POST /api/chat` with Ollama's shapes, streamed as NDJSON
 * by default (Ollama's `stream` defaults to true). The text is deterministic: these
 * routes exist so the gateway's routing and pass-through can be tested and measured,
 * not to chat. A generation holds one of the node's `generateParallel` slots and costs
 * `delayPerCallMs + tokens * delayPerTokenMs` (see options.ts); the OpenAI-shaped routes
 * in openaiCompat.ts share the same core (`runGeneration`).
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
  readonly numPredict: number | undefined;
}

/** A finished generation: its pieces (token-like), why it stopped, and its timings. */
export interface GenerationRun {
  readonly model: ServedModel;
  readonly pieces: readonly string[];
  readonly doneReason: 'stop' | 'length';
  readonly promptTokens: number;
  readonly startNs: bigint;
  readonly loadNs: number;
}

function parseStream(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value !== 'boolean') throw new HttpError(400, 'json: cannot unmarshal into field stream of type bool');
  return value;
}

/** All message contents joined; an empty result means "just load the model", as in Ollama. */
export function chatText(messages: unknown): string {
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

/** `options.num_predict` of an Ollama request (a positive cap; -1 or absent: none). */
function numPredictOf(body: Record<string, unknown>): number | undefined {
  const options = body['options'];
  if (options === undefined || options === null) return undefined;
  if (typeof options !== 'object' || Array.isArray(options)) throw new HttpError(400, 'json: cannot unmarshal into field options of type map[string]interface {}');
  const value = (options as Record<string, unknown>)['num_predict'];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new HttpError(400, 'option "num_predict" must be of type integer');
  return value > 0 ? value : undefined;
}

const WORDS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa', 'lambda', 'mu', 'nu', 'xi', 'omicron', 'pi'];

/** FNV-1a of the prompt, so a reply depends on its prompt and nothing else. */
function fnv(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/** The reply, split into token-like pieces (a word with its leading space). */
export function replyPieces(model: ServedModel, prompt: string, replyTokens: number | null): string[] {
  if (replyTokens === null) {
    return `Simulated reply from ${model.name}: the prompt had ${prompt.length} characters.`.split(/(?= )/);
  }
  let hash = fnv(`${model.key}\u0000${prompt}`);
  const pieces: string[] = [];
  for (let i = 0; i < replyTokens; i++) {
    hash = Math.imul(hash ^ (hash >>> 15), 0x2c1b3c6d) >>> 0;
    const word = WORDS[hash % WORDS.length]!;
    pieces.push(i === 0 ? word : ` ${word}`);
  }
  return pieces;
}

export function promptTokenCount(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/**
 * Runs one generation on a parallel slot: waits for the slot (and a hang), pays the call's and
 * each token's cost, and hands each piece to `onPiece` as it is "generated" (streaming), or
 * pays the whole cost in one wait when there is no `onPiece`. Throws 404 for an unknown model.
 */
export async function runGeneration(
  state: SimState,
  requested: string,
  text: string,
  numPredict: number | undefined,
  signal: AbortSignal,
  onPiece?: (piece: string) => void,
): Promise<GenerationRun> {
  const startNs = process.hrtime.bigint();
  const model = state.catalog.resolve(requested);
  if (!model) throw unknownModel(requested);
  state.touchModel(model);
  if (state.options.hang) await state.hang.wait(signal);
  await state.generation.acquire(signal);
  state.counters.addGeneration(text);
  try {
    const loadNs = elapsedNs(startNs);
    const all = replyPieces(model, text, state.options.replyTokens);
    const pieces = numPredict !== undefined && numPredict < all.length ? all.slice(0, numPredict) : all;
    const doneReason = pieces.length < all.length ? 'length' : 'stop';
    await pause(state.options.delayPerCallMs, signal);
    const perToken = state.options.delayPerTokenMs;
    if (onPiece) {
      for (const piece of pieces) {
        await pause(perToken, signal);
        onPiece(piece);
        // Yield between chunks so they leave as separate writes, like real token streaming.
        await nextTurn(undefined, { signal });
      }
    } else {
      await pause(perToken * pieces.length, signal);
    }
    state.counters.generatedTokens += pieces.length;
    return { model, pieces, doneReason, promptTokens: promptTokenCount(text), startNs, loadNs };
  } finally {
    state.generation.release();
  }
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

function durations(run: GenerationRun): string {
  const total = elapsedNs(run.startNs);
  const evalNs = Math.max(0, total - run.loadNs);
  return (
    `,"total_duration":${total},"load_duration":${run.loadNs},"prompt_eval_count":${run.promptTokens}` +
    `,"prompt_eval_duration":0,"eval_count":${run.pieces.length},"eval_duration":${evalNs}`
  );
}

async function answer(state: SimState, prompt: Prompt, res: ServerResponse, signal: AbortSignal): Promise<void> {
  if (prompt.text === '') {
    const model = state.catalog.resolve(prompt.requested);
    if (!model) throw unknownModel(prompt.requested);
    state.touchModel(model);
    if (state.options.hang) await state.hang.wait(signal);
    sendJson(res, 200, finalChunk(prompt, '', 'load', ''));
    return;
  }
  if (!prompt.stream) {
    const run = await runGeneration(state, prompt.requested, prompt.text, prompt.numPredict, signal);
    sendJson(res, 200, finalChunk(prompt, run.pieces.join(''), run.doneReason, durations(run)));
    return;
  }
  const run = await runGeneration(state, prompt.requested, prompt.text, prompt.numPredict, signal, (piece) => {
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write(`${chunkHead(prompt, piece)},"done":false}\n`);
  });
  if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  res.end(`${finalChunk(prompt, '', run.doneReason, durations(run))}\n`);
}

export async function handleGenerate(
  state: SimState,
  body: Record<string, unknown>,
  res: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  state.counters.generateCalls++;
  const system = optionalString(body, 'system', '');
  const prompt: Prompt = {
    kind: 'generate',
    requested: requiredModel(body),
    text: optionalString(body, 'prompt', ''),
    stream: parseStream(body['stream']),
    numPredict: numPredictOf(body),
  };
  await answer(state, system === '' || prompt.text === '' ? prompt : { ...prompt, text: `${system}\n${prompt.text}` }, res, signal);
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
    numPredict: numPredictOf(body),
  };
  await answer(state, prompt, res, signal);
}
