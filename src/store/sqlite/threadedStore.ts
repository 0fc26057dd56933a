/**
 * The embedded store with its writes on a thread of their own (docs/ARCHITECTURE.md, "The
 * store's writer thread"). better-sqlite3 is synchronous: in one thread, every chunk's write
 * (2-3 ms), admission (6-10 ms for 1,000 documents) and purge ran on the event loop, and
 * every status poll queued behind them. Here the writing SqliteJobStore and SqliteControlStore
 * run unchanged in a worker (storeThread.ts) with the disk guard, the checkpointer and the WAL
 * bound; this side answers reads on its own read-only connection to the same WAL file (WAL
 * readers never wait for the writer), with the same store code (a reading SqliteJobStore).
 *
 * - A write's promise settles once the thread has committed it: a read issued after it sees it.
 * - A chunk's vectors cross in one transferred buffer (storeWire.ts): the answer's own when the
 *   outcome hands them over (the chunk pipeline's), else a copy (the caller's arrays stay usable).
 * - StoreError crosses with its code; `health()` is the writer's, mirrored with every answer.
 * - The thread dying (a crash, `terminate`) fails every call in flight and every later write
 *   with STORE_UNAVAILABLE and logs one line; reads go on. `close` is bounded: a thread that
 *   does not end within `closeTimeoutMs` is terminated.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Database as DB } from 'better-sqlite3';
import type { Worker } from 'node:worker_threads';
import type { ChunkOutcome, GenerationOutcome, ItemResult, JobCounters, JobRecord, NewJob, RetryJob, Scope } from '../../jobs/model.js';
import type { JobStatus } from '../../jobs/state.js';
import type { EmbedOptions } from '../../backends/types.js';
import type { FilledDocument } from '../../jobs/itemFields.js';
import type { Priority } from '../../jobs/priority.js';
import { spawnModuleWorker } from '../../util/moduleWorker.js';
import type { AutobatchEntry, AutobatchFlush, ControlStore, IdempotentAnswer, JobControl, Template, Webhook } from '../control.js';
import { StoreError } from '../errors.js';
import type { Admission, AdmissionPolicy, CacheStats, FailureSummary, JobStore, ListQuery, StoreHealth, TransitionPatch } from '../types.js';
import { SqliteControlStore } from './controlStore.js';
import { prepareDataDir } from './dataDir.js';
import { classified } from './faults.js';
import { SqliteJobStore, type SqliteFootprint } from './sqliteStore.js';
import { fromWire, packOutcome, unpackDocuments, type Call, type PackedDocuments, type Reply, type Target, type ThreadOptions } from './storeWire.js';

export interface ThreadedStoreOptions extends ThreadOptions {
  /** Log lines: the checkpointer's failures, the thread's end. */
  readonly onError?: (message: string) => void;
  /** How long `close` waits for the thread's last checkpoint before terminating it (default 10 s). */
  readonly closeTimeoutMs?: number;
}

const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;
/**
 * The thread's young generation: its garbage is short-lived (a chunk's unpacked outcome, an
 * admission's texts and keys), and V8's default young generation (tens of MB per isolate)
 * made the gateway's peak RSS 302-304 MB under `npm run bench -- load` against 244-247 MB
 * without the thread.
 */
const YOUNG_GENERATION_MB = 8;

interface Waiter {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** The worker and its calls in flight. */
class StoreThread {
  readonly worker: Worker;
  readonly opened: Promise<string>;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 0;
  private mirrored: StoreHealth = { writable: true };
  private ended: StoreError | undefined;
  private closing: Promise<void> | undefined;
  private asked = false;
  private isOpen = false;
  /** Calls not yet posted (flush). */
  private readonly outbox: Call[] = [];
  private readonly outboxTransfer: ArrayBuffer[] = [];

  constructor(options: ThreadedStoreOptions, private readonly onError: (message: string) => void) {
    const workerData: ThreadOptions = {
      dataDir: options.dataDir,
      cache: options.cache,
      ...(options.walLimitBytes === undefined ? {} : { walLimitBytes: options.walLimitBytes }),
      ...(options.reserveBytes === undefined ? {} : { reserveBytes: options.reserveBytes }),
    };
    this.worker = spawnModuleWorker(import.meta.url, 'storeThread', { workerData, resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    let opened: (file: string) => void = () => {};
    let failed: (error: Error) => void = () => {};
    this.opened = new Promise<string>((resolve, reject) => {
      opened = resolve;
      failed = reject;
    });
    this.worker.on('message', (reply: Reply) => {
      if ('opened' in reply) {
        this.mirrored = reply.health;
        this.isOpen = true;
        this.worker.unref();
        return opened(reply.file);
      }
      if ('openError' in reply) return failed(fromWire(reply.openError));
      if ('log' in reply) return this.onError(reply.log);
      if ('closed' in reply) return;
      if (reply.health) this.mirrored = reply.health;
      if (reply.id < 0) {
        this.asked = false;
        return;
      }
      const waiter = this.waiting.get(reply.id);
      if (!waiter) return;
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0 && !this.closing) this.worker.unref();
      if (reply.error) waiter.reject(fromWire(reply.error));
      else waiter.resolve(reply.value);
    });
    this.worker.on('error', (error) => this.end(`it failed: ${error.message}`));
    this.worker.on('exit', (code) => {
      this.end(this.closing ? 'the store was closed' : `it exited with code ${code}`);
      failed(this.ended!);
    });
  }

  call<T>(target: Target, method: string, args: readonly unknown[], transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.ended) return Promise.reject(this.ended);
    if (this.closing) return Promise.reject(new StoreError('STORE_UNAVAILABLE', 'The job store is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (value: unknown) => void, reject });
      // Keep the process alive only while a call is in flight.
      if (this.waiting.size === 1) this.worker.ref();
      this.outbox.push({ id, target, method, args });
      for (const buffer of transfer) this.outboxTransfer.push(buffer);
      if (this.outbox.length === 1) setImmediate(this.flush);
    });
  }

  /**
   * Posts the calls made since the last flush as one message, in call order. Each message wakes
   * the thread, and a woken thread takes a core from this one when none is free: the calls of
   * one turn of the event loop (a burst of chunk answers, each a recordChunk and the next
   * chunk's pendingDocuments) cross together once the turn's I/O is done.
   */
  private readonly flush = (): void => {
    if (this.outbox.length === 0 || this.ended) return;
    const calls = this.outbox.splice(0);
    const transfer = this.outboxTransfer.splice(0);
    this.worker.postMessage(calls, transfer);
  };

  health(): StoreHealth {
    if (this.ended) return { writable: false, reason: this.ended.message };
    // Not writable: ask the writer to look again (a full disk may have room now); the answer updates the mirror.
    if (!this.mirrored.writable && !this.asked && !this.closing) {
      this.asked = true;
      this.worker.postMessage('health');
    }
    return this.mirrored;
  }

  /** Every call in flight and every later one fails with STORE_UNAVAILABLE; said once. */
  private end(why: string): void {
    if (this.ended) return;
    this.ended = new StoreError('STORE_UNAVAILABLE', `The job store's writer thread stopped (${why}); writes fail until the gateway is restarted`);
    if (this.isOpen && !this.closing) this.onError(this.ended.message);
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const waiter of waiters) waiter.reject(this.ended);
  }

  /** Asks the thread to close its store (last checkpoint); terminates it after `timeoutMs`. */
  close(timeoutMs: number): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.ended) return resolve();
      this.worker.ref();
      const timer = setTimeout(() => {
        this.onError(`the store's writer thread did not close within ${timeoutMs} ms; terminated`);
        void this.worker.terminate();
      }, timeoutMs);
      this.worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      // The calls made before close are the thread's to finish first.
      this.flush();
      this.worker.postMessage('close');
    });
    return this.closing;
  }
}

/** Opens the writer thread, then this side's read connection; resolves once both are open. */
export async function openThreadedStore(options: ThreadedStoreOptions): Promise<{ store: ThreadedJobStore; control: ThreadedControlStore }> {
  // Here, so that an unusable --data-dir is the same DataDirError as without the thread.
  prepareDataDir(options.dataDir);
  const thread = new StoreThread(options, options.onError ?? (() => {}));
  const file = await thread.opened;
  let db: DB;
  try {
    db = classified(() => new Database(file, { readonly: true, fileMustExist: true }));
  } catch (error) {
    await thread.close(options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    throw error;
  }
  const reader = new SqliteJobStore(db, options.cache, undefined, path.resolve(file));
  const store = new ThreadedJobStore(thread, reader, options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
  return { store, control: new ThreadedControlStore(thread, new SqliteControlStore(reader)) };
}

export class ThreadedJobStore implements JobStore {
  constructor(
    private readonly thread: StoreThread,
    private readonly reader: SqliteJobStore,
    private readonly closeTimeoutMs: number,
  ) {}

  /** The writer thread (tests end it to see a crash handled). */
  get worker(): Worker {
    return this.thread.worker;
  }

  private write<T>(method: string, ...args: unknown[]): Promise<T> {
    return this.thread.call<T>('jobs', method, args);
  }

  admit(job: NewJob, policy: AdmissionPolicy): Promise<Admission> {
    return this.write('admit', job, policy);
  }

  admitRetry(scope: Scope, of: string, job: RetryJob, policy: AdmissionPolicy): Promise<Admission | 'not-found' | 'active'> {
    return this.write('admitRetry', scope, of, job, policy);
  }

  get(scope: Scope, id: string): Promise<JobRecord | undefined> {
    return this.reader.get(scope, id);
  }

  status(id: string): Promise<JobStatus | undefined> {
    return this.reader.status(id);
  }

  list(scope: Scope, query: ListQuery): Promise<{ jobs: JobRecord[]; total: number }> {
    return this.reader.list(scope, query);
  }

  transition(id: string, to: JobStatus, patch: TransitionPatch): Promise<JobRecord | undefined> {
    return this.write('transition', id, to, patch);
  }

  /** A write: it answers from the content cache first (the cache's key index lives with the writer). */
  cachedAmong(model: string, options: EmbedOptions, texts: readonly string[]): Promise<boolean[]> {
    return this.write('cachedAmong', model, options, texts);
  }

  pendingDocuments(id: string, from: number, to: number): Promise<{ index: number; text: string }[]> {
    return this.write<PackedDocuments>('pendingDocuments', id, from, to).then(unpackDocuments);
  }

  recordChunk(id: string, outcome: ChunkOutcome): Promise<boolean> {
    const { packed, transfer } = packOutcome(outcome);
    return this.thread.call('jobs', 'recordChunk', [id, packed], transfer);
  }

  failureSummary(id: string, limit: number): Promise<FailureSummary> {
    return this.reader.failureSummary(id, limit);
  }

  recordGenerations(id: string, outcome: GenerationOutcome): Promise<boolean> {
    return this.write('recordGenerations', id, outcome);
  }

  readResults(scope: Scope, id: string, offset: number, limit: number): Promise<ItemResult[]> {
    return this.reader.readResults(scope, id, offset, limit);
  }

  purge(scope: Scope, id: string): Promise<'purged' | 'not-found' | 'active'> {
    return this.write('purge', scope, id);
  }

  sweepExpired(now: number): Promise<string[]> {
    return this.write('sweepExpired', now);
  }

  unfinishedJobs(): Promise<JobRecord[]> {
    return this.reader.unfinishedJobs();
  }

  counters(scope: Scope): Promise<JobCounters> {
    return this.reader.counters(scope);
  }

  cacheStats(): Promise<CacheStats> {
    return this.reader.cacheStats();
  }

  /** Pages in use and the WAL, read here (it is checked before every admission). */
  storedBytes(): Promise<number> {
    return this.reader.storedBytes();
  }

  health(): StoreHealth {
    return this.thread.health();
  }

  /** The writer's figures (the disk guard's reserve lives with it). */
  footprint(): Promise<SqliteFootprint> {
    return this.write('footprint');
  }

  async close(): Promise<void> {
    await this.reader.close();
    await this.thread.close(this.closeTimeoutMs);
  }
}

/** Job control on the same file: writes through the thread, reads on this side's connection. */
export class ThreadedControlStore implements ControlStore {
  constructor(
    private readonly thread: StoreThread,
    private readonly reader: SqliteControlStore,
  ) {}

  private write<T>(method: string, ...args: unknown[]): Promise<T> {
    return this.thread.call<T>('control', method, args);
  }

  putControl(c: JobControl): Promise<void> {
    return this.write('putControl', c);
  }

  controls(jobIds: readonly string[]): Promise<Map<string, JobControl>> {
    return this.reader.controls(jobIds);
  }

  setPriority(jobId: string, priority: Priority): Promise<boolean> {
    return this.write('setPriority', jobId, priority);
  }

  deleteControl(jobId: string): Promise<void> {
    return this.write('deleteControl', jobId);
  }

  controlledJobIds(): Promise<string[]> {
    return this.reader.controlledJobIds();
  }

  putWebhook(w: Webhook): Promise<void> {
    return this.write('putWebhook', w);
  }

  webhooks(jobIds: readonly string[]): Promise<Map<string, Webhook>> {
    return this.reader.webhooks(jobIds);
  }

  openWebhooks(limit: number): Promise<Webhook[]> {
    return this.reader.openWebhooks(limit);
  }

  claimWebhook(jobId: string, now: number, leaseUntil: number): Promise<Webhook | undefined> {
    return this.write('claimWebhook', jobId, now, leaseUntil);
  }

  fillScheduledDocuments(jobId: string, documents: readonly FilledDocument[]): Promise<boolean> {
    return this.write('fillScheduledDocuments', jobId, documents);
  }

  putTemplate(t: Template): Promise<boolean> {
    return this.write('putTemplate', t);
  }

  templates(owner: string | null): Promise<Template[]> {
    return this.reader.templates(owner);
  }

  template(owner: string, name: string): Promise<Template | undefined> {
    return this.reader.template(owner, name);
  }

  deleteTemplate(owner: string, name: string): Promise<boolean> {
    return this.write('deleteTemplate', owner, name);
  }

  dueTemplates(now: number): Promise<Template[]> {
    return this.reader.dueTemplates(now);
  }

  advanceTemplate(owner: string, name: string, expected: number, next: number | null): Promise<boolean> {
    return this.write('advanceTemplate', owner, name, expected, next);
  }

  queueAutobatch(e: AutobatchEntry): Promise<void> {
    return this.write('queueAutobatch', e);
  }

  autobatchQueued(owner: string | null): Promise<{ owner: string; target: string; documents: number; oldestAt: number }[]> {
    return this.reader.autobatchQueued(owner);
  }

  takeAutobatch(owner: string, target: string, before: number): Promise<AutobatchEntry[]> {
    return this.write('takeAutobatch', owner, target, before);
  }

  addAutobatchFlush(f: AutobatchFlush): Promise<void> {
    return this.write('addAutobatchFlush', f);
  }

  autobatchHistory(owner: string | null, limit: number): Promise<AutobatchFlush[]> {
    return this.reader.autobatchHistory(owner, limit);
  }

  idempotentAnswer(owner: string, key: string, now: number): Promise<IdempotentAnswer | undefined> {
    return this.reader.idempotentAnswer(owner, key, now);
  }

  keepIdempotentAnswer(owner: string, key: string, answer: IdempotentAnswer, now: number): Promise<IdempotentAnswer> {
    return this.write('keepIdempotentAnswer', owner, key, answer, now);
  }

  reserveIdempotency(owner: string, key: string, fingerprint: string, now: number, leaseUntil: number): Promise<IdempotentAnswer | 'reserved'> {
    return this.write('reserveIdempotency', owner, key, fingerprint, now, leaseUntil);
  }

  releaseIdempotency(owner: string, key: string, fingerprint: string): Promise<void> {
    return this.write('releaseIdempotency', owner, key, fingerprint);
  }

  sweepIdempotency(now: number): Promise<number> {
    return this.write('sweepIdempotency', now);
  }

  releaseDeadReservations(): Promise<number> {
    return this.write('releaseDeadReservations');
  }
}
