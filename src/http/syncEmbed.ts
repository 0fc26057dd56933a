/**
 * Embedding for the sync API (Ollama `/api/embed`, `/api/embeddings`; OpenAI `/v1/embeddings`)
 * through the pool's interactive lane: each call gets the next free slot on a node serving
 * the model, ahead of every batch chunk. A large input list is cut into chunks of the
 * configured chunk size that run in parallel, each on whichever node frees first, so one
 * big call spreads over all nodes; a chunk that meets a transient failure is retried (on
 * another node when the pool has one), and the first lasting failure aborts the rest.
 */
import { setMaxListeners } from 'node:events';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import { BackendError } from '../backends/errors.js';
import { usageOf, type PassThroughEmbedOptions } from '../backends/embedExtras.js';
import type { BackendPool } from '../backends/pool.js';
import type { EmbedResult } from '../backends/types.js';
import { float32ArrayToJson } from '../util/float32Json.js';
import { modelNotFound, noBackend } from './compatErrors.js';

export interface SyncEmbedSettings {
  /** Inputs per backend call (`--chunk-size`). */
  readonly chunkSize: number;
  /** Extra tries of a chunk after a transient failure (`SOLLOL_CHUNK_RETRIES`). */
  readonly retries: number;
}

export interface SyncEmbedOutcome {
  /** `vectors[i]` belongs to `inputs[i]`. */
  readonly vectors: Float32Array[];
  /** Tokens read, as the backends reported them (estimated at 4 characters a token where they did not). */
  readonly promptTokens: number;
  /** The longest load time a backend reported, in nanoseconds. */
  readonly loadDurationNs: number;
  /** Indices of inputs the backend cut to fit the model. */
  readonly truncated: number[];
}

/** Throws a CompatError when no healthy node serves `model` (404, or 503 when the nodes that serve it are down: `BackendPool.availability`). */
export function assertServed(pool: BackendPool, model: string): void {
  const availability = pool.availability(model);
  if (availability !== 'served') throw availability === 'unknown-model' ? modelNotFound(model) : noBackend();
}

export async function embedThroughPool(
  pool: BackendPool,
  model: string,
  inputs: readonly string[],
  options: PassThroughEmbedOptions,
  signal: AbortSignal,
  settings: SyncEmbedSettings,
): Promise<SyncEmbedOutcome> {
  assertServed(pool, model);
  if (inputs.length === 0) return { vectors: [], promptTokens: 0, loadDurationNs: 0, truncated: [] };
  const size = Math.max(1, settings.chunkSize);
  const failFast = new AbortController();
  const combined = AbortSignal.any([signal, failFast.signal]);
  const starts: number[] = [];
  for (let start = 0; start < inputs.length; start += size) starts.push(start);
  // Every chunk listens on the shared signal (waiting for a slot, then its backend call).
  setMaxListeners(2 * starts.length + 10, combined);
  const results = await Promise.all(
    starts.map((start) =>
      embedChunk(pool, model, inputs.slice(start, start + size), options, combined, settings.retries).catch((error: unknown) => {
        failFast.abort();
        throw error;
      }),
    ),
  );
  const vectors: Float32Array[] = [];
  const truncated: number[] = [];
  let promptTokens = 0;
  let loadDurationNs = 0;
  results.forEach((result, i) => {
    const start = starts[i] ?? 0;
    for (const index of result.truncated ?? []) truncated.push(start + index);
    vectors.push(...result.vectors);
    const usage = usageOf(result);
    promptTokens += usage.promptTokens ?? estimateTokens(inputs.slice(start, start + size));
    loadDurationNs = Math.max(loadDurationNs, usage.loadDurationNs ?? 0);
  });
  return { vectors, promptTokens, loadDurationNs, truncated };
}

async function embedChunk(
  pool: BackendPool,
  model: string,
  inputs: string[],
  options: PassThroughEmbedOptions,
  signal: AbortSignal,
  retries: number,
): Promise<EmbedResult> {
  let lastError: BackendError | undefined;
  for (let attempt = 0; ; attempt++) {
    let lease;
    try {
      lease = await pool.acquireInteractive(model, signal);
    } catch (error) {
      // The node that failed was the only one serving the model: report its failure, not "not found".
      throw lastError ?? error;
    }
    if (signal.aborted) {
      lease.release();
      throw new BackendError('CANCELLED', 'The request was aborted');
    }
    try {
      return await lease.embed({ model, inputs, options, signal });
    } catch (error) {
      if (!(error instanceof BackendError) || !error.retryable || attempt >= retries || signal.aborted) throw error;
      lastError = error;
    }
  }
}

/** Ollama's counts are tokens; where a backend does not say, about 4 characters make one. */
function estimateTokens(inputs: readonly string[]): number {
  let tokens = 0;
  for (const text of inputs) tokens += Math.max(1, Math.ceil(text.length / 4));
  return tokens;
}

/** Aborts when the client goes away before the answer was sent, so its backend calls stop. */
export function clientSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** Vectors per yielded piece of a long JSON answer. */
const VECTORS_PER_PIECE = 64;

/**
 * `head` + the vectors, each printed by `vectorJson`, comma-separated + `tail`, in pieces: a
 * 10,000-vector answer is tens of megabytes of JSON and is never built as one string.
 */
export function* jsonPieces(head: string, vectors: readonly Float32Array[], vectorJson: (v: Float32Array, i: number) => string, tail: string): Generator<string> {
  let piece = head;
  for (let i = 0; i < vectors.length; i++) {
    piece += (i > 0 ? ',' : '') + vectorJson(vectors[i] as Float32Array, i);
    if ((i + 1) % VECTORS_PER_PIECE === 0) {
      yield piece;
      piece = '';
    }
  }
  yield piece + tail;
}

/** A short answer as one string (with a content-length); a long one streamed piece by piece as the socket drains. */
export function sendJsonPieces(reply: FastifyReply, pieces: Generator<string>, count: number): FastifyReply {
  reply.type('application/json; charset=utf-8');
  return reply.send(count <= VECTORS_PER_PIECE ? [...pieces].join('') : Readable.from(pieces));
}

export const vectorJson = (v: Float32Array): string => float32ArrayToJson(v);
