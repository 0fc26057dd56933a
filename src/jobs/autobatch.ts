/**
 * Autobatch (the seed's SOLLOL_AUTOBATCH_INTERVAL): `POST /api/autobatch/documents` queues
 * documents durably in the store for a model or a template; flushes happen at every multiple
 * of the interval since the epoch (so every gateway agrees which flush takes which documents:
 * the first boundary after they were queued), and at each one the queued documents of each
 * owner and target become one job, several when over --max-batch-documents. The background task
 * (background.ts) takes each queue atomically, so a document goes into exactly one job even
 * with several gateways; what is queued survives restarts, and a flush missed while the gateway
 * was down happens at its next start. Each flush's job ids are kept for GET /api/autobatch/history.
 */
import { ApiError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AutobatchEntry, AutobatchFlush, ControlStore } from '../store/control.js';
import type { BackgroundTasks } from './background.js';
import type { Scope } from './model.js';
import { isoTime } from './view.js';

export type AutobatchTarget = { readonly model: string } | { readonly template: string };

export interface AutobatchOptions {
  readonly intervalMs: number;
  readonly maxBatchDocuments: number;
  /** Throws (MODEL_NOT_FOUND, TEMPLATE_NOT_FOUND ...) when the target cannot take documents. */
  readonly checkTarget: (scope: Scope, target: AutobatchTarget) => Promise<void>;
  /** Submits one job of these documents for the target; its job id. */
  readonly submit: (scope: Scope, target: AutobatchTarget, documents: readonly string[], metadata: Record<string, unknown>) => Promise<string>;
}

const METADATA_BUDGET = 16 * 1024 - 512;

function targetKey(target: AutobatchTarget): string {
  return 'model' in target ? `model:${target.model}` : `template:${target.template}`;
}

function targetOf(key: string): AutobatchTarget {
  return key.startsWith('model:') ? { model: key.slice('model:'.length) } : { template: key.slice('template:'.length) };
}

const ownerOf = (scope: Scope): string => scope.owner ?? 'admin';

export class Autobatch {
  constructor(
    private readonly control: ControlStore,
    private readonly options: AutobatchOptions,
    private readonly log: Logger,
  ) {}

  /** The flush that takes what is queued at `now`: the first multiple of the interval after it. */
  flushAfter(now: number): number {
    return (Math.floor(now / this.options.intervalMs) + 1) * this.options.intervalMs;
  }

  async queue(scope: Scope, target: AutobatchTarget, documents: readonly string[], metadata?: Record<string, unknown>) {
    await this.options.checkTarget(scope, target);
    const now = Date.now();
    const entry: AutobatchEntry = { owner: ownerOf(scope), target: targetKey(target), documents, metadata: metadata ?? null, queuedAt: now };
    await this.control.queueAutobatch(entry);
    const queued = (await this.control.autobatchQueued(entry.owner)).find((q) => q.target === entry.target)?.documents ?? documents.length;
    const flushAt = this.flushAfter(now);
    return {
      queued: documents.length,
      ...target,
      queued_for_target: queued,
      flush_at: isoTime(flushAt)!,
      jobs_expected: Math.ceil(queued / this.options.maxBatchDocuments),
      message: `${documents.length} documents queued; the flush at ${isoTime(flushAt)} makes them a job`,
    };
  }

  async status(scope: Scope) {
    const queued = await this.control.autobatchQueued(scope.kind === 'admin' && scope.owner === undefined ? null : ownerOf(scope));
    return {
      interval_seconds: this.options.intervalMs / 1000,
      next_flush_at: isoTime(this.flushAfter(Date.now()))!,
      queued: queued.map((q) => ({ ...targetOf(q.target), documents: q.documents, oldest_queued_at: isoTime(q.oldestAt)!, ...(scope.kind === 'admin' ? { owner: q.owner } : {}) })),
    };
  }

  async history(scope: Scope, limit: number) {
    const flushes = await this.control.autobatchHistory(scope.kind === 'admin' && scope.owner === undefined ? null : ownerOf(scope), limit);
    return { flushes: flushes.map((f) => ({ ...targetOf(f.target), job_ids: f.jobIds, documents: f.documents, flushed_at: isoTime(f.flushedAt)! })) };
  }

  start(tasks: BackgroundTasks): void {
    tasks.every('autobatch', Math.min(this.options.intervalMs, 500), () => this.flush(Date.now()));
  }

  /** Flushes every queue holding documents queued before the last boundary passed. */
  async flush(now: number): Promise<void> {
    const boundary = Math.floor(now / this.options.intervalMs) * this.options.intervalMs;
    for (const q of await this.control.autobatchQueued(null)) {
      if (q.oldestAt >= boundary) continue;
      const entries = await this.control.takeAutobatch(q.owner, q.target, boundary);
      if (entries.length > 0) await this.flushOne(q.owner, q.target, entries, boundary, now);
    }
  }

  private async flushOne(owner: string, key: string, entries: AutobatchEntry[], boundary: number, now: number): Promise<void> {
    const documents = entries.flatMap((e) => e.documents);
    const metadata: Record<string, unknown> = { autobatch_flush_at: isoTime(boundary) };
    const extra = entries.map((e) => e.metadata).filter((m) => m !== null);
    if (extra.length > 0 && Buffer.byteLength(JSON.stringify(extra)) <= METADATA_BUDGET) metadata.autobatch_metadata = extra;
    const scope: Scope = { kind: 'owner', owner };
    const target = targetOf(key);
    const jobIds: string[] = [];
    const max = this.options.maxBatchDocuments;
    for (let start = 0; start < documents.length; start += max) {
      try {
        jobIds.push(await this.options.submit(scope, target, documents.slice(start, start + max), metadata));
      } catch (error) {
        const rest = documents.slice(start);
        if (error instanceof ApiError && error.statusCode < 500 && error.statusCode !== 429) {
          // The target can no longer take them (model gone, template deleted): dropped, and said so.
          this.log.warn({ owner, target: key, documents: rest.length, err: error.message }, 'autobatch documents dropped');
          break;
        }
        // A passing fault (store, capacity): back in the queue for the next flush.
        await this.control.queueAutobatch({ owner, target: key, documents: rest, metadata: null, queuedAt: entries[0]!.queuedAt });
        this.log.warn({ owner, target: key, documents: rest.length, err: error instanceof Error ? error.message : error }, 'autobatch flush failed; documents queued again');
        break;
      }
    }
    if (jobIds.length === 0) return;
    const flush: AutobatchFlush = { owner, target: key, jobIds, documents: documents.length, flushedAt: now };
    await this.control.addAutobatchFlush(flush);
    this.log.info({ owner, target: key, jobs: jobIds.length, documents: documents.length }, 'autobatch flushed');
  }
}
