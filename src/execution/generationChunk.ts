/**
 * A range of a generation job (`generate` / `chat`) in the distributed mode, worked by
 * whichever process took the chunk from the queue: each pending item of the range gets its own
 * generation slot of this process's pool (one item per call) and runs as soon as it has one,
 * so a range keeps as many slots busy as it has items. The status is re-read before each call
 * (a cancelled job starts none); answers and per-item failures are recorded as they come; a
 * transient failure sends the range back to the queue for another attempt (the items already
 * answered are not pending any more, so they are not run again), until `chunkRetries`.
 * docs/ARCHITECTURE.md, "Generation".
 */
import type { BackendError } from '../backends/errors.js';
import type { BackendPool, GenerationLease } from '../backends/pool.js';
import type { GenerationPath } from '../backends/generation.js';
import type { EmbedOptions } from '../backends/types.js';
import type { Logger } from '../logger.js';
import type { JobStore } from '../store/types.js';
import type { ChunkData } from './bullQueue.js';
import type { ChunkVerdict } from './chunkProcessor.js';
import { finishIfDone } from './finishJob.js';
import { generationPathOf, runGenerationItem, type GenerationJobType } from './generationItem.js';

export interface GenerationRangeContext {
  readonly store: JobStore;
  readonly pool: BackendPool;
  readonly log: Logger;
  readonly chunkRetries: number;
  readonly generationTimeoutMs?: number;
  /** A call of the job: abortable by a cancel, counted for the missed-cancel status poll. */
  startCall(jobId: string): { signal: AbortSignal; done: () => void };
  stopping(): boolean;
}

export interface GenerationJobMeta {
  readonly model: string;
  readonly type: GenerationJobType;
  readonly options: EmbedOptions;
}

const RETRY_BASE_MS = 200;
const SLOT_WAIT_MS = 1000;

export async function runGenerationRange(ctx: GenerationRangeContext, data: ChunkData, job: GenerationJobMeta): Promise<ChunkVerdict> {
  const { store } = ctx;
  const path = generationPathOf(job.type);
  const docs = await store.pendingDocuments(data.jobId, data.start, data.end);
  const running: Promise<void>[] = [];
  const transient: BackendError[] = [];
  let verdict: ChunkVerdict | undefined;
  for (const doc of docs) {
    const lease = await acquire(ctx, job.model, path);
    if (lease === 'stopping') {
      verdict = { kind: 'retry', attempt: data.attempt, delayMs: 0 };
      break;
    }
    if (lease === 'no-backend') {
      verdict = { kind: 'no-backend' };
      break;
    }
    if ((await store.status(data.jobId).catch(() => undefined)) !== 'running') {
      lease.release();
      break;
    }
    const call = ctx.startCall(data.jobId);
    running.push(
      runGenerationItem(lease, {
        type: job.type,
        model: job.model,
        request: doc.text,
        signal: call.signal,
        ...(job.options.keepAlive === undefined ? {} : { keepAlive: job.options.keepAlive }),
        ...(ctx.generationTimeoutMs === undefined ? {} : { timeoutMs: ctx.generationTimeoutMs }),
      })
        .then(async (outcome) => {
          if (outcome.ok) {
            await store.recordGenerations(data.jobId, { done: [{ index: doc.index, result: outcome.result }], failed: [] });
            return;
          }
          const error = outcome.error;
          if (error.code === 'CANCELLED') return;
          if ((error.retryable || error.code === 'MODEL_NOT_FOUND') && data.attempt < ctx.chunkRetries) {
            transient.push(error);
            return;
          }
          await store.recordGenerations(data.jobId, { done: [], failed: [{ index: doc.index, code: error.code, error: error.message }] });
        })
        .finally(() => call.done()),
    );
  }
  await Promise.all(running);
  if (verdict) return verdict;
  if (ctx.stopping()) return { kind: 'retry', attempt: data.attempt, delayMs: 0 };
  if (transient.length > 0) {
    const delayMs = RETRY_BASE_MS * 2 ** data.attempt;
    ctx.log.warn({ job_id: data.jobId, attempt: data.attempt + 1 }, `${transient.length} generation items of ${data.start}-${data.end - 1} will be retried in ${delayMs} ms: ${transient[0]!.message}`);
    return { kind: 'retry', attempt: data.attempt + 1, delayMs };
  }
  await finishIfDone(store, data.jobId, data.ttlMs, ctx.log);
  return { kind: 'done' };
}

async function acquire(ctx: GenerationRangeContext, model: string, path: GenerationPath): Promise<GenerationLease | 'no-backend' | 'stopping'> {
  for (;;) {
    if (ctx.stopping()) return 'stopping';
    if (!ctx.pool.servesGeneration(model, path)) return 'no-backend';
    const lease = ctx.pool.tryAcquireGeneration(model, path);
    if (lease) return lease;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, SLOT_WAIT_MS);
      const off = ctx.pool.onCapacity(done);
      function done(): void {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  }
}
