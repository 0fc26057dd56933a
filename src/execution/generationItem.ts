/**
 * One item of a generation job (`generate` / `chat`) on one generation lease: the item's
 * stored request (JSON: `{prompt, system?, options?, format?}` or `{messages, options?,
 * format?}`) sent to the node's `/api/generate` or `/api/chat` without streaming, the node's
 * answer validated, and turned into the item's result: a JSON object text with `response`
 * (generate) or `message` (chat), `done_reason`, `prompt_eval_count`, `eval_count` and
 * `total_duration`. Or the normalised BackendError. Which item, which slot, retries and
 * recording are the chunk pipeline's (chunkProcessor.ts callOnLease runs this); this module
 * only runs the call (docs/ARCHITECTURE.md, "Generation").
 */
import { BackendError, coerceBackendError } from '../backends/errors.js';
import { DEFAULT_GENERATION_TIMEOUT_MS, type GenerationPath } from '../backends/generation.js';
import type { GenerationLease } from '../backends/pool.js';

export type GenerationJobType = 'generate' | 'chat';

export interface GenerationItemCall {
  readonly type: GenerationJobType;
  readonly model: string;
  /** The job's `keep_alive`, sent with every item. */
  readonly keepAlive?: string | number;
  /** The item's stored request (JSON object text). */
  readonly request: string;
  /** Cancel and shutdown. */
  readonly signal: AbortSignal;
  /** Whole-call limit. @defaultValue DEFAULT_GENERATION_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

export type GenerationItemOutcome = { readonly ok: true; readonly result: string } | { readonly ok: false; readonly error: BackendError };

export function generationPathOf(type: GenerationJobType): GenerationPath {
  return type === 'generate' ? '/api/generate' : '/api/chat';
}

/** Runs the item on the lease (which it always releases) and returns its outcome; never throws. */
export async function runGenerationItem(lease: GenerationLease, call: GenerationItemCall): Promise<GenerationItemOutcome> {
  const timeoutMs = call.timeoutMs ?? DEFAULT_GENERATION_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = AbortSignal.any([call.signal, timeout]);
  try {
    const body: Record<string, unknown> = { ...(JSON.parse(call.request) as Record<string, unknown>), model: call.model, stream: false };
    if (call.keepAlive !== undefined) body.keep_alive = call.keepAlive;
    const response = await lease.forward(generationPathOf(call.type), JSON.stringify(body), signal);
    if (response.status < 200 || response.status >= 300) return { ok: false, error: await lease.backend.forwardedError(response) };
    const text = await response.body.text();
    return { ok: true, result: resultOf(call.type, text, lease.backendId) };
  } catch (error) {
    if (timeout.aborted && !call.signal.aborted) {
      return { ok: false, error: new BackendError('BACKEND_TIMEOUT', `Backend ${lease.backendId} did not finish the generation within ${timeoutMs} ms`, { cause: error }) };
    }
    return { ok: false, error: call.signal.aborted ? new BackendError('CANCELLED', 'the item was aborted', { cause: error }) : coerceBackendError(error, lease.backendId) };
  } finally {
    lease.release();
  }
}

function count(value: unknown): number | null {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : null;
}

/** The item's result from the node's answer; a body that is not what Ollama sends is the node's fault. */
function resultOf(type: GenerationJobType, text: string, backendId: string): string {
  const invalid = (why: string): BackendError => new BackendError('BACKEND_UNAVAILABLE', `Backend ${backendId} answered the ${type} call with ${why}`);
  let answer: Record<string, unknown>;
  try {
    answer = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw invalid('a body that is not JSON');
  }
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) throw invalid('a body that is not a JSON object');
  const stats = {
    done_reason: typeof answer.done_reason === 'string' ? answer.done_reason : null,
    prompt_eval_count: count(answer.prompt_eval_count),
    eval_count: count(answer.eval_count),
    total_duration: count(answer.total_duration),
  };
  if (type === 'generate') {
    if (typeof answer.response !== 'string') throw invalid('no "response" string');
    return JSON.stringify({ response: answer.response, ...stats });
  }
  const message = answer.message as { role?: unknown; content?: unknown } | undefined;
  if (typeof message !== 'object' || message === null || typeof message.content !== 'string') throw invalid('no "message" with a "content" string');
  const kept: Record<string, unknown> = { role: typeof message.role === 'string' ? message.role : 'assistant', content: message.content };
  const tools = (message as Record<string, unknown>).tool_calls;
  if (Array.isArray(tools)) kept.tool_calls = tools;
  return JSON.stringify({ message: kept, ...stats });
}
