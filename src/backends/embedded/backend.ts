/**
 * The embedded backend: real semantic embeddings computed in-process, so that the gateway
 * works with no embedding server at all. The model runs in worker threads, so the
 * gateway's event loop stays free while it computes.
 */
import type { Worker } from 'node:worker_threads';
import { spawnModuleWorker } from '../../util/moduleWorker.js';
import { BackendError } from '../errors.js';
import type { BackendProbe, EmbedRequest, EmbedResult, EmbeddingBackend } from '../types.js';
import { applyLimits, DEFAULT_MAX_CHARS } from './limits.js';
import { WorkerPool } from './pool.js';
import { EMBEDDED_DIMENSIONS } from './protocol.js';

/** The one model this backend serves (Universal Sentence Encoder lite, 512 dimensions). */
export const EMBEDDED_MODEL = 'use-lite';
const EMBEDDED_MODEL_TAG = `${EMBEDDED_MODEL}:latest`;

export interface EmbeddedBackendOptions {
  /**
   * Worker threads, each with its own copy of the model (about 150-200 MB, up to
   * 400 MB after long inputs since the WASM heap never shrinks) and running one call at
   * a time on one core: more threads than cores only adds memory. Also the backend's
   * `maxConcurrency`. Workers start with the first calls that need them, not before.
   */
  readonly threads: number;
  /**
   * Per-document limit in UTF-16 code units; longer inputs are cut (and reported in
   * `truncated`) or, with `truncate: false`, rejected. See {@link DEFAULT_MAX_CHARS}
   * for why the default is what it is.
   * @defaultValue 8000 ({@link DEFAULT_MAX_CHARS})
   */
  readonly maxChars?: number;
}

/** The worker runs from the same tree as this file (util/moduleWorker.ts: dist or tsx). */
function spawnWorker(): Worker {
  return spawnModuleWorker(import.meta.url, 'worker');
}

export function createEmbeddedBackend(options: EmbeddedBackendOptions): EmbeddingBackend {
  const maxChars = options.maxChars ?? DEFAULT_MAX_CHARS;
  if (!Number.isInteger(maxChars) || maxChars < 1) {
    throw new RangeError(`Embedded backend: maxChars must be a positive integer, got ${options.maxChars}`);
  }
  const id = 'embedded';
  const pool = new WorkerPool({ size: options.threads, spawn: spawnWorker, label: 'embedded backend' });
  let closed = false;

  async function embed(request: EmbedRequest): Promise<EmbedResult> {
    if (request.model !== EMBEDDED_MODEL && request.model !== EMBEDDED_MODEL_TAG) {
      throw new BackendError('MODEL_NOT_FOUND', `Model '${request.model}' is not served by the embedded backend (it serves '${EMBEDDED_MODEL}')`, { status: 404 });
    }
    const dimensions = request.options.dimensions;
    if (dimensions !== undefined && dimensions !== EMBEDDED_DIMENSIONS) {
      throw new BackendError('INPUT_REJECTED', `Model '${EMBEDDED_MODEL}' only produces ${EMBEDDED_DIMENSIONS} dimensions, not ${dimensions}`);
    }
    if (request.signal?.aborted) {
      throw new BackendError('CANCELLED', `Call to ${id} was aborted`, { cause: request.signal.reason });
    }
    const { texts, truncated } = applyLimits(request.inputs, maxChars, request.options.truncate);
    if (texts.length === 0) return { vectors: [] };
    const vectors = await pool.run(texts, request.signal);
    return truncated.length > 0 ? { vectors, truncated } : { vectors };
  }

  return {
    id,
    kind: 'embedded',
    maxConcurrency: options.threads,
    embed,
    // Answers from configuration: loading the model here would cost a worker and 0.2 s per probe.
    async probe(): Promise<BackendProbe> {
      return closed ? { healthy: false, models: [], error: 'embedded backend is closed' } : { healthy: true, models: [EMBEDDED_MODEL_TAG] };
    },
    async close(): Promise<void> {
      closed = true;
      await pool.close();
    },
  };
}
