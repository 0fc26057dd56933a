/**
 * The generation capability of a backend, beside the `EmbeddingBackend` port: one
 * generation (`/api/generate`, `/api/chat`, `/v1/chat/completions`, `/v1/completions`) per
 * call, forwarded with the client's JSON body and answered with the node's. A backend that
 * has it says how many generations it runs at once (`generationParallel`, Ollama's
 * `OLLAMA_NUM_PARALLEL`); the pool keeps that many generation slots per node, apart from
 * its embedding slots (docs/ARCHITECTURE.md, "Generation").
 */
import type { Readable } from 'node:stream';
import { BackendError } from './errors.js';
import type { EmbeddingBackend } from './types.js';

export const GENERATION_PATHS = ['/api/generate', '/api/chat', '/v1/chat/completions', '/v1/completions'] as const;
export type GenerationPath = (typeof GENERATION_PATHS)[number];

/** Generations a node runs at once unless its `--backend` URL says otherwise (`?parallel=N`). */
export const DEFAULT_GENERATION_PARALLEL = 1;
/** Whole-call timeout of one generation (`--generation-timeout`), in milliseconds. */
export const DEFAULT_GENERATION_TIMEOUT_MS = 600_000;

/** A forwarded call's answer: status and headers at once, the body as it streams in. */
export interface ForwardedResponse {
  readonly status: number;
  readonly contentType: string;
  /** The node's body; iterate it (Buffers) or read it with `text()`, exactly once. */
  readonly body: Readable & { text(): Promise<string> };
}

export interface GenerationBackend extends EmbeddingBackend {
  /** Generation slots: calls the pool keeps in flight here at once; 0 = generates nothing. */
  readonly generationParallel: number;
  /** Whether the backend serves this route at all (an OpenAI-compatible server: only `/v1/...`). */
  canGenerate(path: GenerationPath): boolean;
  /**
   * Sends the body to the route; resolves with the answer as soon as its headers arrive. The
   * generation timeout bounds the wait for the headers and each silence in the body.
   */
  forward(path: GenerationPath, body: string, signal?: AbortSignal): Promise<ForwardedResponse>;
  /** Reads a non-2xx forwarded answer into the BackendError its status means. */
  forwardedError(response: ForwardedResponse): Promise<BackendError>;
}

export function generationBackend(backend: EmbeddingBackend): GenerationBackend | undefined {
  const candidate = backend as Partial<GenerationBackend>;
  return typeof candidate.canGenerate === 'function' && (candidate.generationParallel ?? 0) > 0 ? (backend as GenerationBackend) : undefined;
}

/**
 * The BackendError a forwarded error answer means: what `throwIfError` (the backend's own reading
 * of an answer's status and body) throws for it, else BACKEND_UNAVAILABLE with the status.
 */
export async function forwardedErrorOf(id: string, response: ForwardedResponse, throwIfError: (answer: { status: number; text: string }) => void): Promise<BackendError> {
  const text = await response.body.text().catch(() => '');
  try {
    throwIfError({ status: response.status, text });
  } catch (error) {
    if (error instanceof BackendError) return error;
  }
  return new BackendError('BACKEND_UNAVAILABLE', `Backend ${id} answered ${response.status}`, { status: response.status });
}
