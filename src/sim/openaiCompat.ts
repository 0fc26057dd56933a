/**
 * `POST /v1/chat/completions` and `POST /v1/completions` as Ollama serves them (its OpenAI
 * compatibility layer): the same deterministic generation as `/api/chat` and `/api/generate`
 * (generate.ts), answered as a `chat.completion` / `text_completion` object, or with
 * `stream: true` as server-sent events (`data: {chunk}` ... `data: [DONE]`). Errors take
 * OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, as Ollama's do there.
 */

import type { ServerResponse } from 'node:http';
import { chatText, runGeneration, type GenerationRun } from './generate.js';
import { HttpError, sendJson } from './http.js';
import type { SimState } from './state.js';

type Kind = 'chat' | 'completion';

interface Call {
  readonly kind: Kind;
  readonly model: string;
  readonly text: string;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly maxTokens: number | undefined;
}

let sequence = 0;

function openaiErrorType(status: number): string {
  if (status === 400) return 'invalid_request_error';
  if (status === 404) return 'not_found_error';
  return 'api_error';
}

function sendOpenAIError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, JSON.stringify({ error: { message, type: openaiErrorType(status), param: null, code: null } }));
}

function parseCall(kind: Kind, body: Record<string, unknown>): Call {
  const model = body['model'];
  if (typeof model !== 'string' || model.trim() === '') throw new HttpError(400, 'model is required');
  let text: string;
  if (kind === 'chat') {
    if (!Array.isArray(body['messages']) || body['messages'].length === 0) throw new HttpError(400, 'invalid message format');
    text = chatText(body['messages']);
  } else {
    const prompt = body['prompt'];
    if (typeof prompt !== 'string') throw new HttpError(400, 'invalid type for \'prompt\' field');
    text = prompt;
  }
  const stream = body['stream'] ?? false;
  if (typeof stream !== 'boolean') throw new HttpError(400, 'invalid type for \'stream\' field');
  const maxTokens = body['max_tokens'] ?? body['max_completion_tokens'];
  if (maxTokens !== undefined && maxTokens !== null && (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens))) {
    throw new HttpError(400, 'invalid type for \'max_tokens\' field');
  }
  const options = body['stream_options'] as { include_usage?: unknown } | undefined;
  return {
    kind,
    model,
    text,
    stream,
    includeUsage: options?.include_usage === true,
    maxTokens: typeof maxTokens === 'number' && maxTokens > 0 ? maxTokens : undefined,
  };
}

function usage(run: GenerationRun): Record<string, number> {
  return { prompt_tokens: run.promptTokens, completion_tokens: run.pieces.length, total_tokens: run.promptTokens + run.pieces.length };
}

function head(call: Call, id: string, created: number, object: string): Record<string, unknown> {
  return { id, object, created, model: call.model, system_fingerprint: 'fp_ollama' };
}

function wholeBody(call: Call, id: string, created: number, run: GenerationRun): string {
  const content = run.pieces.join('');
  const choice =
    call.kind === 'chat'
      ? { index: 0, message: { role: 'assistant', content }, finish_reason: run.doneReason }
      : { text: content, index: 0, finish_reason: run.doneReason };
  return JSON.stringify({ ...head(call, id, created, call.kind === 'chat' ? 'chat.completion' : 'text_completion'), choices: [choice], usage: usage(run) });
}

function chunk(call: Call, id: string, created: number, piece: string, finish: string | null): string {
  const choice =
    call.kind === 'chat'
      ? { index: 0, delta: { role: 'assistant', content: piece }, finish_reason: finish }
      : { text: piece, index: 0, finish_reason: finish };
  return `data: ${JSON.stringify({ ...head(call, id, created, call.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'), choices: [choice] })}\n\n`;
}

async function answer(state: SimState, kind: Kind, body: Record<string, unknown>, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const call = parseCall(kind, body);
  const id = `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${++sequence}`;
  const created = Math.floor(Date.now() / 1000);
  if (!call.stream) {
    const run = await runGeneration(state, call.model, call.text, call.maxTokens, signal);
    sendJson(res, 200, wholeBody(call, id, created, run));
    return;
  }
  const open = (): void => {
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  };
  const run = await runGeneration(state, call.model, call.text, call.maxTokens, signal, (piece) => {
    open();
    res.write(chunk(call, id, created, piece, null));
  });
  open();
  res.write(chunk(call, id, created, '', run.doneReason));
  if (call.includeUsage) res.write(`data: ${JSON.stringify({ ...head(call, id, created, kind === 'chat' ? 'chat.completion.chunk' : 'text_completion'), choices: [], usage: usage(run) })}\n\n`);
  res.end('data: [DONE]\n\n');
}

async function guarded(state: SimState, kind: Kind, body: Record<string, unknown>, res: ServerResponse, signal: AbortSignal): Promise<void> {
  try {
    await answer(state, kind, body, res, signal);
  } catch (error) {
    if (signal.aborted || !(error instanceof HttpError)) throw error;
    if (error.status < 500) state.counters.rejected++;
    sendOpenAIError(res, error.status, error.message);
  }
}

export function handleOpenAIChat(state: SimState, body: Record<string, unknown>, res: ServerResponse, signal: AbortSignal): Promise<void> {
  state.counters.openaiChatCalls++;
  return guarded(state, 'chat', body, res, signal);
}

export function handleOpenAICompletion(state: SimState, body: Record<string, unknown>, res: ServerResponse, signal: AbortSignal): Promise<void> {
  state.counters.openaiCompletionCalls++;
  return guarded(state, 'completion', body, res, signal);
}
