/**
 * Sync generation calls (`/api/generate`, `/api/chat`, `/v1/chat/completions`,
 * `/v1/completions`): a generation slot from the pool (ahead of batch items), the client's
 * body forwarded to the node, and the node's answer relayed as it arrives (NDJSON or SSE).
 * The slot is held until the last byte and then given back. A failure after the first bytes
 * cannot change the status any more: it ends the stream with an error line in the route
 * family's shape (Ollama: `{"error","code"}` line; OpenAI: a `data: {"error":{...}}` event).
 */
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { coerceBackendError } from '../backends/errors.js';
import type { GenerationPath } from '../backends/generation.js';
import type { BackendPool, GenerationLease } from '../backends/pool.js';
import { canonicalModel } from '../backends/modelNames.js';
import { CompatError } from './compatErrors.js';
import { assertServed, clientSignal } from './syncEmbed.js';

const OLLAMA_WHAT: Readonly<Record<GenerationPath, string>> = {
  '/api/generate': 'generate',
  '/api/chat': 'chat',
  '/v1/chat/completions': 'chat completions',
  '/v1/completions': 'completions',
};

function describeKind(kind: string): string {
  if (kind === 'embedded') return 'the embedded backend';
  if (kind === 'openai') return 'an OpenAI-compatible backend';
  return `a ${kind} backend`;
}

/**
 * A generation slot for a sync call. A model served only by backends that cannot generate on
 * this route (the embedded model, an OpenAI-compatible embedding server) is the client's
 * mistake: UNSUPPORTED_OPERATION (400), naming the backends.
 */
export async function acquireSyncGeneration(pool: BackendPool, model: string, path: GenerationPath, signal: AbortSignal): Promise<GenerationLease> {
  assertServed(pool, model);
  if (!pool.servesGeneration(model, path)) {
    const key = canonicalModel(model);
    const what = OLLAMA_WHAT[path];
    const kinds = [...new Set(pool.snapshot().filter((n) => n.healthy && n.models.includes(key)).map((n) => describeKind(n.kind)))].join(' and ');
    throw new CompatError(
      'UNSUPPORTED_OPERATION',
      `model ${JSON.stringify(model)} does not support ${what}: it is served only by ${kinds}, which can embed but not ${what}; use a model of an Ollama node (or an OpenAI-compatible backend given ?parallel=N)`,
      { param: 'model' },
    );
  }
  return pool.acquireGeneration(model, path, signal);
}

/** Forwards `body` on a generation slot and relays the node's answer (status, type, bytes). */
export async function forwardGeneration(pool: BackendPool, path: GenerationPath, model: string, body: Record<string, unknown>, reply: FastifyReply): Promise<FastifyReply> {
  const signal = clientSignal(reply);
  const lease = await acquireSyncGeneration(pool, model, path, signal);
  try {
    const response = await lease.forward(path, JSON.stringify(body), signal);
    if (response.status < 200 || response.status >= 300) throw await lease.backend.forwardedError(response);
    reply.code(200).type(response.contentType);
    const sse = path.startsWith('/v1/');
    return reply.send(Readable.from(relay(response.body, lease, signal, sse)));
  } catch (error) {
    lease.release();
    throw error;
  }
}

async function* relay(body: AsyncIterable<Buffer> & { destroy(): void }, lease: GenerationLease, signal: AbortSignal, sse: boolean): AsyncGenerator<Buffer | string> {
  try {
    for await (const chunk of body) yield chunk;
  } catch (error) {
    if (!signal.aborted) {
      const cause = coerceBackendError(error, lease.backendId);
      const timeout = cause.code === 'BACKEND_TIMEOUT';
      const message = timeout
        ? `Backend ${lease.backendId} went silent for longer than the generation timeout in the middle of the response`
        : `Backend ${lease.backendId} stopped answering in the middle of the response (${describeCause(error)})`;
      const code = timeout ? 'BACKEND_TIMEOUT' : 'BACKEND_UNAVAILABLE';
      yield sse
        ? `\n\ndata: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`
        : `\n${JSON.stringify({ error: message, code })}\n`;
    }
  } finally {
    body.destroy();
    lease.release();
  }
}

function describeCause(error: unknown): string {
  const err = error as { code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  if (typeof err?.cause?.code === 'string') return err.cause.code;
  return typeof err?.code === 'string' ? err.code : typeof err?.message === 'string' ? err.message : 'connection lost';
}
