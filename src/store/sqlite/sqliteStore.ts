/**
 * The embedded JobStore: one SQLite file in WAL mode under --data-dir (or `:memory:`).
 * better-sqlite3 is synchronous, so every method runs as one short transaction on the
 * event loop; result pages are read with `.all()` (a connection refuses writes while an
 * `.iterate()` is open on it).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Database as DB, Statement, Transaction } from 'better-sqlite3';
import type { ChunkOutcome, GenerationOutcome, ItemResult, JobCounters, JobRecord, NewJob, RetryJob, Scope } from '../../jobs/model.js';
import { statesLeadingTo, type JobStatus } from '../../jobs/state.js';
import type { ItemErrorCode } from '../../backends/errors.js';
import type { EmbedOptions } from '../../backends/types.js';
import type { Admission, AdmissionPolicy, CacheStats, FailureSummary, JobStore, ListQuery, TransitionPatch } from '../types.js';
import { vectorsToBlob } from '../vectorBlob.js';
import { CACHE_KEY_BYTES, cacheKey, cacheKeyPrefix, cacheKeyStrings } from '../cacheKey.js';
import { StoreError } from '../errors.js';
import { Checkpointer } from './checkpointer.js';
import { prepareDataDir } from './dataDir.js';
import { DiskGuard } from './diskGuard.js';
import { EmbeddingCacheTable, type CacheEntry, type CachePolicy } from './embeddingCache.js';
import { classified, classifyStoreFault } from './faults.js';
import { migrate } from './migrations.js';
import { consecutiveIds, DOC_DONE, DOC_FAILED, DOC_PENDING, itemFromRow, jobFromRow, type DocumentRow, type JobRow } from './rows.js';

const TERMINAL_SQL = `status IN ('completed', 'failed', 'cancelled')`;
const COUNTER_FOR: Partial<Record<JobStatus, string>> = {
  completed: 'jobs_completed',
  failed: 'jobs_failed',
  cancelled: 'jobs_cancelled',
};

/** Short, so that the WAL is reset while chunks are written back to back (checkpointer.ts). */
const CHECKPOINT_INTERVAL_MS = 250;
/** The WAL's bound: a RESTART checkpoint follows once it holds more (and journal_size_limit). 96 MiB: peak 102 MB (target < 128 MB), fewer waits than 64 MiB (checkpointer.ts). */
export const DEFAULT_WAL_LIMIT_BYTES = 96 * 1024 * 1024;
/** Room kept on the disk for deletes and cancels once it is full (diskGuard.ts). */
export const DEFAULT_RESERVE_BYTES = 8 * 1024 * 1024;

export interface SqliteStoreOptions {
  readonly cache: CachePolicy;
  readonly onError?: (message: string) => void;
  readonly walLimitBytes?: number;
  /** 0: no reserve file (deletes on a full disk then depend on a TRUNCATE checkpoint freeing room). */
  readonly reserveBytes?: number;
}

/** What the store says about its own footprint and health (/api/stats, /api/health). */
export interface SqliteFootprint {
  readonly kind: 'sqlite';
  readonly path: string;
  /** Pages in use, the WAL included: the figure --max-store-gb caps. */
  readonly used_bytes: number;
  readonly database_file_bytes: number;
  readonly wal_bytes: number;
  readonly wal_limit_bytes: number;
  readonly disk_free_bytes: number | null;
  readonly reserve_bytes: number;
  readonly reserve_held: boolean;
  readonly writable: boolean;
}

export function openSqliteStore(dataDir: string, options: SqliteStoreOptions): SqliteJobStore {
  const onError = options.onError ?? (() => {});
  const walLimitBytes = options.walLimitBytes ?? DEFAULT_WAL_LIMIT_BYTES;
  if (dataDir === ':memory:') return new SqliteJobStore(new Database(':memory:'), options.cache);
  prepareDataDir(dataDir);
  const file = path.join(dataDir, 'sollol.db');
  const guard = new DiskGuard(dataDir, options.reserveBytes ?? DEFAULT_RESERVE_BYTES);
  const store = new SqliteJobStore(classified(() => new Database(file)), options.cache, { file, guard, walLimitBytes, onError });
  guard.ensureReserve();
  store.attachCheckpointer(new Checkpointer(file, { intervalMs: CHECKPOINT_INTERVAL_MS }, onError));
  return store;
}

interface FileBacking {
  readonly file: string;
  readonly onError: (message: string) => void;
  readonly guard: DiskGuard;
  readonly walLimitBytes: number;
}

/** Writes that only add data are refused in low-space mode; freeing ones (cancel, delete, expiry) go on. */
export type WriteKind = 'grow' | 'free';

export class SqliteJobStore implements JobStore {
  private readonly db: DB;
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private checkpointer: Checkpointer | undefined;
  private readonly cache: EmbeddingCacheTable;
  private readonly backing: FileBacking | undefined;
  /** Set while the checkpointer truncates the WAL: writes wait for it (boundWal). */
  private walReset: Promise<void> | undefined;
  /** The last STORE_UNAVAILABLE a write met, until a write succeeds again. */
  private fault: StoreError | undefined;

  /** Set on a reading instance (`readerOf`): the file whose WAL it measures. */
  private readonly readerFile: string | undefined;

  /**
   * `readerOf`: a reading instance on a read-only connection to that file, beside the writer
   * that owns it (the writer thread, threadedStore.ts): its read methods only are called, and
   * it builds no in-memory cache index (that lives with the writer).
   */
  constructor(db: DB, cachePolicy: CachePolicy = { maxBytes: 0 }, backing?: FileBacking, readerOf?: string) {
    this.db = db;
    this.backing = backing;
    this.readerFile = readerOf;
    // 16 KiB pages hold a 768-dim float32 vector (3 KiB) without overflow chains: measured
    // 1.6x faster writes than 4 KiB pages. Only takes effect on a new database file.
    db.pragma('page_size = 16384');
    db.pragma('journal_mode = WAL');
    // NORMAL is durable across process crashes in WAL mode; only an OS crash can lose the last commits.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // Checkpoints run in a worker thread (checkpointer.ts), never on a commit of this connection.
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`journal_size_limit = ${backing?.walLimitBytes ?? DEFAULT_WAL_LIMIT_BYTES}`);
    migrate(db);
    this.stmt = prepareStatements(db);
    this.cache = new EmbeddingCacheTable(db, cachePolicy, readerOf === undefined);
  }

  async admit(job: NewJob, policy: AdmissionPolicy): Promise<Admission> {
    if (this.walReset) await this.walReset;
    return this.write('grow', this.db.transaction((): Admission => {
      const overCap = this.ownerOverCap(job.owner, policy);
      if (overCap) return overCap;
      const evicted = this.sweepSync(policy.now).length + this.evictForRoom(policy.maxJobs);
      const stored = (this.stmt.countJobs.get() as { n: number }).n;
      if (stored >= policy.maxJobs) return { admitted: false, storedJobs: stored };
      const seq = Number(
        this.stmt.insertJob.run({
          id: job.id,
          type: job.type ?? 'embed',
          owner: job.owner,
          model: job.model,
          status: job.status,
          created_at: job.createdAt,
          started_at: job.status === 'running' ? job.createdAt : null,
          total_items: job.documents.length,
          metadata: JSON.stringify(job.metadata),
          options: JSON.stringify(job.options),
        }).lastInsertRowid,
      );
      this.insertDocuments(seq, job, policy.now);
      this.bump('jobs_created', job.owner);
      return { admitted: true, job: this.getSync(job.id)!, evicted };
    }));
  }

  async admitRetry(scope: Scope, of: string, job: RetryJob, policy: AdmissionPolicy): Promise<Admission | 'not-found' | 'active'> {
    if (this.walReset) await this.walReset;
    try {
      return this.write('grow', this.db.transaction((): Admission | 'not-found' | 'active' => {
        const old = this.stmt.getJob.get(of) as JobRow | undefined;
        if (!old || !visible(scope, old.owner)) return 'not-found';
        if (old.status === 'pending' || old.status === 'running' || old.status === 'scheduled') return 'active';
        if (old.expires_at !== null && old.expires_at <= policy.now) return 'not-found';
        const overCap = this.ownerOverCap(job.owner, policy);
        if (overCap) return overCap;
        // Copy first, then make room: the retried job may itself be the oldest finished one.
        const seq = Number(
          this.stmt.insertRetryJob.run({
            id: job.id,
            owner: job.owner,
            status: job.status,
            created_at: job.createdAt,
            started_at: job.status === 'running' ? job.createdAt : null,
            old_seq: old.seq,
          }).lastInsertRowid,
        );
        const kept = this.stmt.copyDocuments.run(seq, old.seq).changes;
        const evicted = this.sweepSync(policy.now).length + this.evictForRoom(policy.maxJobs + 1);
        const stored = (this.stmt.countJobs.get() as { n: number }).n;
        if (stored > policy.maxJobs) throw new AdmissionRefused(stored - 1);
        this.bump('jobs_created', job.owner);
        const succeeded = (this.stmt.countDone.get(seq) as { n: number }).n;
        this.stmt.addProgress.run(succeeded, 0, old.dimensions, seq);
        if (kept > 0) this.recordCacheHits(seq, this.cache.fillJob(seq, policy.now));
        return { admitted: true, job: this.getSync(job.id)!, evicted };
      }));
    } catch (error) {
      // Thrown inside the transaction so that the copy is rolled back.
      if (error instanceof AdmissionRefused) return { admitted: false, storedJobs: error.storedJobs };
      throw error;
    }
  }

  /** The refusal when the owner already has `policy.maxActivePerOwner` pending or running jobs. */
  private ownerOverCap(owner: string, policy: AdmissionPolicy): Admission | undefined {
    const cap = policy.maxActivePerOwner ?? 0;
    if (cap <= 0) return undefined;
    const active = (this.stmt.countOwnerActive.get(owner) as { n: number }).n;
    return active >= cap ? { admitted: false, reason: 'owner-active', activeJobs: active } : undefined;
  }

  /** Global and per-owner job counters move together, in the caller's transaction. */
  private bump(name: string, owner: string): void {
    this.stmt.bumpCounter.run(name);
    this.stmt.bumpOwnerCounter.run(owner, name);
  }

  /**
   * Inserts the documents, each already done when the content cache has its vector: an
   * insert of the full row is several times cheaper than growing the row later. The pending
   * ones go in a few statements over JSON arrays of the texts (json_each), their keys cut
   * from one blob of keys: one call into SQLite per slice instead of one per document
   * (docs/ARCHITECTURE.md, "Admission"). Cache hits, usually few, are inserted one by one.
   */
  private insertDocuments(seq: number, job: NewJob, now: number): void {
    const documents = job.documents;
    // Generation items are never answered from the (embedding) content cache.
    if (!this.cache.enabled || (job.type ?? 'embed') !== 'embed') {
      for (const [from, to] of admissionSlices(documents)) {
        this.stmt.insertPlainDocuments.run({ seq, base: from, texts: JSON.stringify(documents.slice(from, to)) });
      }
      return;
    }
    const n = documents.length;
    const digests = cacheKeyStrings(cacheKeyPrefix(job.model, job.options), documents);
    const keys = Buffer.from(digests.join(''), 'latin1');
    // A byte per document: PENDING, DUPLICATED (pending, and its text occurs again in the job), HIT (inserted here).
    const flags = Buffer.alloc(n, FLAG_PENDING);
    const firstAt = new Map<string, number>();
    for (let idx = 0; idx < n; idx++) {
      const first = firstAt.get(digests[idx]!);
      if (first === undefined) firstAt.set(digests[idx]!, idx);
      else flags[first] = flags[idx] = FLAG_DUPLICATED;
    }
    let hits = 0;
    for (let idx = 0; idx < n; idx++) {
      const key = keys.subarray(idx * CACHE_KEY_BYTES, (idx + 1) * CACHE_KEY_BYTES);
      const hit = this.cache.lookup(key, now);
      if (!hit) continue;
      this.stmt.insertDoneDocument.run(seq, idx, documents[idx]!, key, flags[idx] === FLAG_DUPLICATED ? 1 : 0, hit.vectorId, hit.truncated);
      flags[idx] = FLAG_HIT;
      hits++;
    }
    if (hits < n) {
      for (const [from, to] of admissionSlices(documents)) {
        this.stmt.insertKeyedDocuments.run({
          seq,
          base: from,
          texts: JSON.stringify(documents.slice(from, to)),
          keys: keys.subarray(from * CACHE_KEY_BYTES, to * CACHE_KEY_BYTES),
          flags: flags.subarray(from, to),
        });
      }
    }
    this.recordCacheHits(seq, hits);
  }

  /** Room for one more job: delete the oldest terminal jobs beyond the limit (never an active one). */
  private evictForRoom(maxJobs: number): number {
    const stored = (this.stmt.countJobs.get() as { n: number }).n;
    const excess = stored - maxJobs + 1;
    if (excess <= 0) return 0;
    return this.stmt.evictOldestTerminal.run(excess).changes;
  }

  async get(scope: Scope, id: string): Promise<JobRecord | undefined> {
    const job = classified(() => this.getSync(id));
    return job && visible(scope, job.owner) ? job : undefined;
  }

  async status(id: string): Promise<JobStatus | undefined> {
    return classified(() => (this.stmt.getStatus.get(id) as { status: JobStatus } | undefined)?.status);
  }

  private getSync(id: string): JobRecord | undefined {
    const row = this.stmt.getJob.get(id) as JobRow | undefined;
    return row ? jobFromRow(row) : undefined;
  }

  async list(scope: Scope, query: ListQuery): Promise<{ jobs: JobRecord[]; total: number }> {
    const params = { owner: ownerOf(scope), status: query.status ?? null, limit: query.limit };
    return classified(() => {
      const rows = this.stmt.listJobs.all(params) as JobRow[];
      const total = (this.stmt.countListed.get(params) as { n: number }).n;
      return { jobs: rows.map(jobFromRow), total };
    });
  }

  async transition(id: string, to: JobStatus, patch: TransitionPatch): Promise<JobRecord | undefined> {
    if (this.walReset) await this.walReset;
    // Ending a job writes a few bytes and lets its space be reclaimed: allowed on a full disk.
    return this.write(COUNTER_FOR[to] ? 'free' : 'grow', this.db.transaction((): JobRecord | undefined => {
      const from = statesLeadingTo(to);
      const row = this.stmt.getJob.get(id) as JobRow | undefined;
      if (!row || !from.includes(row.status as JobStatus)) return undefined;
      const errors = patch.error ? JSON.stringify([...(JSON.parse(row.errors) as unknown[]), patch.error]) : row.errors;
      let failedNow = 0;
      if (to === 'failed' && patch.error) {
        failedNow = this.stmt.failPending.run(patch.error.code, patch.error.error, row.seq).changes;
      }
      this.stmt.updateStatus.run({
        seq: row.seq,
        status: to,
        started_at: to === 'running' ? patch.at : row.started_at,
        completed_at: COUNTER_FOR[to] ? patch.at : null,
        expires_at: patch.expiresAt ?? null,
        errors,
        failed_now: failedNow,
      });
      const counter = COUNTER_FOR[to];
      if (counter) this.bump(counter, row.owner);
      return this.getSync(id);
    }));
  }

  /**
   * Answers from the content cache first (those documents become done, as cache hits),
   * then returns the rest, one document per distinct text: duplicates stay pending and
   * are filled when the first of them is recorded.
   */
  async pendingDocuments(id: string, from: number, to: number): Promise<{ index: number; text: string }[]> {
    if (this.walReset) await this.walReset;
    return this.write('grow', this.db.transaction(() => {
      const job = this.stmt.getProgressRow.get(id) as { seq: number; status: string } | undefined;
      if (!job || job.status !== 'running') return [];
      this.recordCacheHits(job.seq, this.cache.fillRange(job.seq, from, to, Date.now()));
      const rows = this.stmt.pendingDocuments.all(job.seq, from, to) as [index: number, text: string, key: Buffer | null][];
      const seen = new Set<string>();
      const unique: { index: number; text: string }[] = [];
      for (const [index, text, key] of rows) {
        if (key !== null) {
          const hex = key.toString('hex');
          if (seen.has(hex)) continue;
          seen.add(hex);
        }
        unique.push({ index, text });
      }
      this.cache.countMisses(unique.length);
      return unique;
    }));
  }

  /** Needs the in-memory key index: asked of the writing store (the writer thread). */
  async cachedAmong(model: string, options: EmbedOptions, texts: readonly string[]): Promise<boolean[]> {
    if (!this.cache.enabled || this.cache.size === 0) return texts.map(() => false);
    const prefix = cacheKeyPrefix(model, options);
    return classified(() => texts.map((text) => this.cache.has(cacheKey(prefix, text))));
  }

  private recordCacheHits(seq: number, hits: number): void {
    if (hits === 0) return;
    const dims = (this.stmt.someVectorLength.get(seq) as { n: number } | undefined)?.n ?? null;
    this.stmt.addProgress.run(hits, 0, dims === null ? null : dims / 4, seq);
    this.cache.countHits(hits);
  }

  /**
   * A chunk's vectors in a few statements, not three per document: the vectors in one insert
   * (their ids are chosen here, consecutive, so document `i` of the chunk gets `first + i`),
   * each run of consecutive indices marked done by one range update, which says which
   * documents it marked (RETURNING). Only in-job duplicates, failures and vectors that nothing
   * came to refer to (the documents were answered already) take a statement each.
   */
  async recordChunk(id: string, outcome: ChunkOutcome): Promise<boolean> {
    if (this.walReset) await this.walReset;
    return this.write('grow', this.db.transaction((): boolean => {
      const row = this.stmt.getProgressRow.get(id) as { seq: number; status: string; dimensions: number | null } | undefined;
      if (!row || row.status !== 'running') return false;
      const keys = this.chunkKeys(row.seq, outcome);
      let done = 0;
      let failed = 0;
      let dimensions = row.dimensions;
      const cached: CacheEntry[] = [];
      const failures = [...outcome.failed];
      const stored: ChunkOutcome['done'][number][] = [];
      for (const item of outcome.done) {
        dimensions ??= item.vector.length;
        if (item.vector.length !== dimensions) {
          failures.push({ index: item.index, code: 'INVALID_VECTOR', error: `The backend returned ${item.vector.length} dimensions where this job's vectors have ${dimensions}` });
          continue;
        }
        stored.push(item);
      }
      if (stored.length > 0) {
        const bytes = dimensions! * 4;
        // Written once: the document, its duplicates in this job and the cache refer to it.
        const first = this.stmt.nextVectorId.get() as number;
        const inserted = this.stmt.insertVectors.run({ n: stored.length, bytes, blob: vectorsToBlob(stored.map((item) => item.vector), dimensions!) });
        consecutiveIds(inserted, first, stored.length);
        const marked = this.markDoneRuns(row.seq, stored, first);
        for (let i = 0; i < stored.length; i++) {
          const item = stored[i]!;
          const vectorId = first + i;
          let count = marked[i]!;
          const doc = keys.get(item.index);
          // Identical texts elsewhere in this job are done too.
          if (doc?.dup) count += this.stmt.markDoneByKey.run(vectorId, item.truncated ? 1 : 0, row.seq, doc.key).changes;
          // Answered already (a duplicate chunk's later answer): nothing refers to the row.
          if (count === 0) {
            this.stmt.deleteVector.run(vectorId);
            continue;
          }
          done += count;
          if (doc?.key) cached.push({ key: doc.key, vectorId, bytes, truncated: item.truncated });
        }
      }
      for (const item of failures) {
        failed += this.stmt.markFailed.run(item.code, item.error, row.seq, item.index).changes;
        const doc = keys.get(item.index);
        if (doc?.dup) failed += this.stmt.markFailedByKey.run(item.code, item.error, row.seq, doc.key).changes;
      }
      this.stmt.addProgress.run(done, failed, dimensions, row.seq);
      this.cache.putMany(cached, Date.now());
      return true;
    }));
  }

  /**
   * Marks `items` done, item `i` with vector `first + i`, one update per run of consecutive
   * indices with one truncated flag; returns 1 for each item it marked (still pending), else 0.
   */
  private markDoneRuns(seq: number, items: ChunkOutcome['done'], first: number): Uint8Array {
    const marked = new Uint8Array(items.length);
    for (let start = 0; start < items.length; ) {
      const from = items[start]!.index;
      const truncated = items[start]!.truncated;
      let end = start + 1;
      while (end < items.length && items[end]!.index === from + (end - start) && items[end]!.truncated === truncated) end++;
      const indices = this.stmt.markDoneRange.all(first + start - from, truncated ? 1 : 0, seq, from, from + (end - start)) as number[];
      if (indices.length === end - start) {
        marked.fill(1, start, end);
      } else {
        for (const index of indices) marked[start + index - from] = 1;
      }
      start = end;
    }
    return marked;
  }

  async recordGenerations(id: string, outcome: GenerationOutcome): Promise<boolean> {
    if (this.walReset) await this.walReset;
    return this.write('grow', this.db.transaction((): boolean => {
      const row = this.stmt.getProgressRow.get(id) as { seq: number; status: string } | undefined;
      if (!row || row.status !== 'running') return false;
      let done = 0;
      let failed = 0;
      for (const item of outcome.done) done += this.stmt.markGenerated.run(item.result, row.seq, item.index).changes;
      for (const item of outcome.failed) failed += this.stmt.markFailed.run(item.code, item.error, row.seq, item.index).changes;
      this.stmt.addProgress.run(done, failed, null, row.seq);
      return true;
    }));
  }

  /** Cache keys and duplicate flags of a chunk's documents, read in one query. */
  private chunkKeys(seq: number, outcome: ChunkOutcome): Map<number, { key: Buffer; dup: boolean }> {
    const keys = new Map<number, { key: Buffer; dup: boolean }>();
    if (!this.cache.enabled) return keys;
    const indices = [...outcome.done.map((d) => d.index), ...outcome.failed.map((f) => f.index)];
    if (indices.length === 0) return keys;
    const rows = this.stmt.chunkKeys.all(seq, Math.min(...indices), Math.max(...indices)) as [idx: number, key: Buffer | null, dup: number][];
    for (const [idx, key, dup] of rows) if (key) keys.set(idx, { key, dup: dup === 1 });
    return keys;
  }

  /** Content-cache figures for /api/stats. */
  async cacheStats(): Promise<CacheStats> {
    return classified(() => ({ enabled: this.cache.enabled, max_bytes: this.cache.policy.maxBytes, ...this.cache.stats() }));
  }

  async failureSummary(id: string, limit: number): Promise<FailureSummary> {
    const job = this.stmt.getProgressRow.get(id) as { seq: number } | undefined;
    if (!job) return { counts: {}, first: [] };
    const counts: Record<string, number> = {};
    for (const row of this.stmt.failureCounts.all(job.seq) as { code: string; n: number }[]) counts[row.code] = row.n;
    const first = this.stmt.firstFailures.all(job.seq, limit) as { index: number; code: ItemErrorCode; error: string }[];
    return { counts, first };
  }

  async readResults(scope: Scope, id: string, offset: number, limit: number): Promise<ItemResult[]> {
    return classified(() => {
      const job = this.stmt.getJob.get(id) as JobRow | undefined;
      if (!job || !visible(scope, job.owner)) return [];
      const rows = this.stmt.readDocuments.all(job.seq, offset, offset + limit) as DocumentRow[];
      return rows.map(itemFromRow);
    });
  }

  async purge(scope: Scope, id: string): Promise<'purged' | 'not-found' | 'active'> {
    if (this.walReset) await this.walReset;
    return this.write('free', this.db.transaction(() => {
      const row = this.stmt.getJob.get(id) as JobRow | undefined;
      if (!row || !visible(scope, row.owner)) return 'not-found' as const;
      if (row.status === 'pending' || row.status === 'running' || row.status === 'scheduled') return 'active' as const;
      this.stmt.deleteJob.run(row.seq);
      return 'purged' as const;
    }));
  }

  async sweepExpired(now: number): Promise<string[]> {
    if (this.walReset) await this.walReset;
    return this.write('free', this.db.transaction(() => this.sweepSync(now)));
  }

  private sweepSync(now: number): string[] {
    const ids = (this.stmt.expiredIds.all(now) as { id: string }[]).map((r) => r.id);
    if (ids.length > 0) this.stmt.deleteExpired.run(now);
    return ids;
  }

  async unfinishedJobs(): Promise<JobRecord[]> {
    if (this.walReset) await this.walReset;
    return classified(() => (this.stmt.unfinished.all() as JobRow[]).map(jobFromRow));
  }

  async counters(scope: Scope): Promise<JobCounters> {
    return classified(() => this.countersSync(scope));
  }

  private countersSync(scope: Scope): JobCounters {
    const owner = ownerOf(scope);
    const counter = (name: string): number =>
      ((owner === null ? this.stmt.getCounter.get(name) : this.stmt.getOwnerCounter.get(owner, name)) as { value: number } | undefined)?.value ?? 0;
    const byStatus = this.stmt.countByStatus.all({ owner }) as { status: string; n: number }[];
    const count = (status: string): number => byStatus.find((r) => r.status === status)?.n ?? 0;
    return {
      totalJobsCreated: counter('jobs_created'),
      totalJobsCompleted: counter('jobs_completed'),
      totalJobsFailed: counter('jobs_failed'),
      totalJobsCancelled: counter('jobs_cancelled'),
      activeJobs: count('running'),
      pendingJobs: count('pending'),
      storedJobs: byStatus.reduce((sum, r) => sum + r.n, 0),
    };
  }

  /**
   * Pages holding data (the database's pages less its free list, pages still only in the WAL
   * included) plus the WAL file, which takes disk too. Freed pages are reused, so deleting
   * jobs makes room at once although the file keeps its size; the WAL is kept under its limit
   * by the checkpointer (checkpointer.ts) and truncated to zero after a TRUNCATE checkpoint.
   */
  async storedBytes(): Promise<number> {
    return classified(() => this.usedPageBytes() + this.walBytes());
  }

  private usedPageBytes(): number {
    const pragma = (name: string): number => this.db.pragma(name, { simple: true }) as number;
    return (pragma('page_count') - pragma('freelist_count')) * pragma('page_size');
  }

  private freePageBytes(): number {
    return (this.db.pragma('freelist_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
  }

  private walBytes(): number {
    const file = this.backing?.file ?? this.readerFile;
    if (file === undefined) return 0;
    try {
      return fs.statSync(`${file}-wal`).size;
    } catch {
      return 0;
    }
  }

  /** Sizes and writability, for /api/stats and /api/health. */
  async footprint(): Promise<SqliteFootprint> {
    const { backing } = this;
    let databaseBytes = 0;
    let diskFree: number | null = null;
    if (backing) {
      databaseBytes = classified(() => fs.statSync(backing.file).size);
      diskFree = classified(() => backing.guard.space().freeBytes);
    }
    return {
      kind: 'sqlite',
      path: backing?.file ?? ':memory:',
      used_bytes: await this.storedBytes(),
      database_file_bytes: databaseBytes,
      wal_bytes: this.walBytes(),
      wal_limit_bytes: backing?.walLimitBytes ?? 0,
      disk_free_bytes: diskFree,
      reserve_bytes: backing?.guard.reserveBytes ?? 0,
      reserve_held: backing?.guard.reserveHeld() ?? false,
      writable: this.health().writable,
    };
  }

  /**
   * Whether new data can be written: not while the disk is full (until it has room again) nor
   * after a write met an I/O fault (until a write succeeds again).
   */
  health(): { writable: boolean; reason?: string } {
    const guard = this.backing?.guard;
    if (guard?.lowSpace && !guard.recheck(classified(() => this.freePageBytes()))) {
      return { writable: false, reason: `the store's disk is full (since ${new Date(guard.since ?? Date.now()).toISOString()})` };
    }
    if (this.fault) return { writable: false, reason: this.fault.message };
    return { writable: true };
  }

  /**
   * Runs one write transaction, with store faults classified (faults.ts) and the full-disk
   * rules of diskGuard.ts: in low-space mode a 'grow' write is refused at once; a 'free'
   * write that meets a full disk gets the reserve's bytes and a TRUNCATE checkpoint, then one
   * more try.
   */
  private write<T>(kind: WriteKind, transaction: Transaction<() => T>): T {
    // IMMEDIATE: the write lock is taken at BEGIN, under the busy timeout. A deferred
    // transaction that reads first and then writes fails at once with SQLITE_BUSY when the
    // checkpointer's TRUNCATE reset the WAL in between (measured: the busy handler is skipped).
    // The content cache's in-memory key index follows the transaction (embeddingCache.ts).
    const fn = (): T => {
      let result: T;
      try {
        result = transaction.immediate();
      } catch (error) {
        this.cache.rollback();
        throw error;
      }
      this.cache.commit();
      return result;
    };
    const guard = this.backing?.guard;
    if (kind === 'grow' && guard?.lowSpace && !guard.recheck(classified(() => this.freePageBytes()))) {
      throw storeFull();
    }
    let result: T;
    try {
      result = fn();
    } catch (error) {
      const fault = classifyStoreFault(error);
      if (!fault) throw error;
      if (fault.code !== 'STORE_FULL' || !guard) {
        this.fault = fault;
        throw fault;
      }
      guard.enterLowSpace();
      if (kind === 'grow') throw storeFull(fault);
      this.truncateWal();
      try {
        result = fn();
      } catch (again) {
        throw classifyStoreFault(again) ?? again;
      }
    }
    this.fault = undefined;
    this.boundWal();
    if (kind === 'free' && guard?.lowSpace) {
      this.truncateWal();
      guard.recheck(this.freePageBytes());
    }
    return result;
  }

  /** Copies the WAL into the database and truncates it to zero bytes; failures are left to the next try. */
  private truncateWal(): void {
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Busy or still no room: the checkpointer tries again on its next tick.
    }
  }

  /**
   * Once the WAL is over its limit (or a quarter of the free disk, if less), the next
   * operations wait while the checkpointer restarts it, or truncates it when the disk is
   * short (checkpointer.ts): the back-pressure
   * that keeps the WAL bounded whatever the write rate. Writes keep the order they were
   * called in (they wait on one promise, released first in, first out; the scheduler relies
   * on that order). Reads (get, status, list, results pages, counters, cache figures) do not
   * wait: they see what is committed, and a status poll must not queue behind a reset that
   * takes 20-190 ms under load (test/wal-reset-reads.test.ts). A caller that needs its own
   * write before a read awaits the write, as every caller does.
   */
  private boundWal(): void {
    const { backing, checkpointer } = this;
    if (!backing || !checkpointer || this.walReset) return;
    const wal = this.walBytes();
    const short = wal >= 1 << 20 && wal > this.freeDiskBytes() / 4;
    if (wal <= backing.walLimitBytes && !short) return;
    // Over the limit: restart the WAL in place (cheaper); short of disk: give its bytes back.
    this.walReset = checkpointer.truncate(short ? 'TRUNCATE' : 'RESTART').then((truncated) => {
      this.walReset = undefined;
      if (!truncated) backing.onError(`the WAL (${Math.round(wal / 1048576)} MiB) could not be truncated; trying again after the next write`);
    });
  }

  private freeDiskBytes(): number {
    try {
      return this.backing?.guard.space().freeBytes ?? Number.POSITIVE_INFINITY;
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  }

  /** The connection, for the job-control tables on the same file (controlStore.ts). */
  get database(): DB {
    return this.db;
  }

  /**
   * One write transaction of another table family on this file (the job-control tables,
   * controlStore.ts), on the job store's write path: it waits for a WAL reset like every job
   * write (and keeps its place in their order), runs IMMEDIATE under the busy timeout, with
   * faults classified and the full-disk rules. A deferred read-then-write transaction there
   * failed at once with SQLITE_BUSY while the checkpointer's RESTART held the write lock
   * (found by `npm run bench -- moonshot`: a 500 on a submit with an idempotency key).
   */
  async transact<T>(kind: WriteKind, fn: () => T): Promise<T> {
    if (this.walReset) await this.walReset;
    return this.write(kind, this.db.transaction(fn));
  }

  attachCheckpointer(checkpointer: Checkpointer): void {
    this.checkpointer = checkpointer;
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
  }
}

/**
 * Slices [from, to) of a job's documents for its json_each inserts: at most SLICE_DOCUMENTS
 * documents or about SLICE_CHARS characters of text each, so that the JSON copy of the texts
 * and SQLite's parse of it stay small next to the request body whatever its size (a
 * 128 MB body is not copied whole twice more).
 */
function* admissionSlices(documents: readonly string[]): Generator<[number, number]> {
  let from = 0;
  let chars = 0;
  for (let idx = 0; idx < documents.length; idx++) {
    chars += documents[idx]!.length;
    if (idx + 1 - from >= SLICE_DOCUMENTS || chars >= SLICE_CHARS) {
      yield [from, idx + 1];
      from = idx + 1;
      chars = 0;
    }
  }
  if (from < documents.length) yield [from, documents.length];
}

const SLICE_DOCUMENTS = 2_000;
const SLICE_CHARS = 4 * 1024 * 1024;

/** insertDocuments' byte per document (insertKeyedDocuments). */
const FLAG_PENDING = 0;
const FLAG_DUPLICATED = 1;
const FLAG_HIT = 2;

class AdmissionRefused extends Error {
  constructor(readonly storedJobs: number) {
    super('admission refused');
  }
}

function ownerOf(scope: Scope): string | null {
  return scope.kind === 'admin' ? null : scope.owner;
}

function visible(scope: Scope, owner: string): boolean {
  return scope.kind === 'admin' || scope.owner === owner;
}

function prepareStatements(db: DB) {
  const s = (sql: string): Statement => db.prepare(sql);
  return {
    insertJob: s(`INSERT INTO jobs (id, owner, type, model, status, created_at, started_at, total_items, metadata, options)
                  VALUES (@id, @owner, @type, @model, @status, @created_at, @started_at, @total_items, @metadata, @options)`),
    // @texts: a JSON array of the job's texts; @keys: their cache keys, CACHE_KEY_BYTES each, end to end;
    // @flags: a byte per document (FLAG_*; a cache hit is inserted apart). Both are blobs: substr()
    // of a blob is cut by byte offset at once, of a text it walks the characters (quadratic).
    // Document @base + j.key of the slice (admissionSlices).
    insertKeyedDocuments: s(`INSERT INTO documents (job_seq, idx, state, text, cache_key, dup)
                             SELECT @seq, @base + j.key, ${DOC_PENDING}, j.value, substr(@keys, j.key * ${CACHE_KEY_BYTES} + 1, ${CACHE_KEY_BYTES}),
                                    substr(@flags, j.key + 1, 1) = x'0${FLAG_DUPLICATED}'
                             FROM json_each(@texts) j WHERE substr(@flags, j.key + 1, 1) <> x'0${FLAG_HIT}'`),
    insertPlainDocuments: s(`INSERT INTO documents (job_seq, idx, state, text, cache_key, dup)
                             SELECT @seq, @base + j.key, ${DOC_PENDING}, j.value, NULL, 0 FROM json_each(@texts) j`),
    insertDoneDocument: s(`INSERT INTO documents (job_seq, idx, state, text, cache_key, dup, vector_id, truncated)
                           VALUES (?, ?, ${DOC_DONE}, ?, ?, ?, ?, ?)`),
    countJobs: s(`SELECT COUNT(*) AS n FROM jobs`),
    evictOldestTerminal: s(`DELETE FROM jobs WHERE seq IN (
                              SELECT seq FROM jobs WHERE ${TERMINAL_SQL} ORDER BY completed_at ASC, seq ASC LIMIT ?)`),
    getJob: s(`SELECT * FROM jobs WHERE id = ?`),
    insertRetryJob: s(`INSERT INTO jobs (id, owner, type, model, status, created_at, started_at, total_items, metadata, options, retry_of)
                       SELECT @id, @owner, type, model, @status, @created_at, @started_at, total_items, metadata, options, id
                       FROM jobs WHERE seq = @old_seq`),
    // A done document's vector is referenced (vector_id), not copied; one written inline
    // before migration 8 is copied as it is.
    copyDocuments: s(`INSERT INTO documents (job_seq, idx, state, text, vector, vector_id, truncated, cache_key, dup, result)
                      SELECT ?, idx, CASE WHEN state = ${DOC_DONE} THEN ${DOC_DONE} ELSE ${DOC_PENDING} END, text,
                             CASE WHEN state = ${DOC_DONE} THEN vector END, CASE WHEN state = ${DOC_DONE} THEN vector_id END,
                             CASE WHEN state = ${DOC_DONE} THEN truncated ELSE 0 END,
                             cache_key, dup, CASE WHEN state = ${DOC_DONE} THEN result END
                      FROM documents WHERE job_seq = ?`),
    countDone: s(`SELECT COUNT(*) AS n FROM documents WHERE job_seq = ? AND state = ${DOC_DONE}`),
    getStatus: s(`SELECT status FROM jobs WHERE id = ?`),
    getProgressRow: s(`SELECT seq, status, dimensions FROM jobs WHERE id = ?`),
    listJobs: s(`SELECT * FROM jobs WHERE (@owner IS NULL OR owner = @owner) AND (@status IS NULL OR status = @status)
                 ORDER BY created_at DESC, seq DESC LIMIT @limit`),
    countListed: s(`SELECT COUNT(*) AS n FROM jobs WHERE (@owner IS NULL OR owner = @owner) AND (@status IS NULL OR status = @status)`),
    updateStatus: s(`UPDATE jobs SET status = @status, started_at = @started_at, completed_at = @completed_at,
                       expires_at = @expires_at, errors = @errors, failed_items = failed_items + @failed_now
                     WHERE seq = @seq`),
    failPending: s(`UPDATE documents SET state = ${DOC_FAILED}, code = ?, error = ? WHERE job_seq = ? AND state = ${DOC_PENDING}`),
    // A document whose text occurs again in the job (dup) is returned only as the lowest pending
    // copy: the others are filled by key when it is recorded, so a text is embedded once even
    // while several chunks of the job are in flight.
    // The key only of a text that occurs again in the job (dup): the others' keys are unique there.
    pendingDocuments: s(`SELECT idx AS "index", text, CASE WHEN dup = 1 THEN cache_key END AS key FROM documents
                         WHERE job_seq = ? AND idx >= ? AND idx < ? AND state = ${DOC_PENDING}
                           AND (dup = 0 OR idx = (SELECT MIN(d2.idx) FROM documents d2 INDEXED BY documents_dup_key
                                                  WHERE d2.job_seq = documents.job_seq AND d2.cache_key = documents.cache_key
                                                    AND d2.dup = 1 AND d2.state = ${DOC_PENDING}))
                         ORDER BY idx`).raw(true),
    // Raw mode (one array per row, in column order) for the statements read per chunk.
    chunkKeys: s(`SELECT idx, cache_key AS key, dup FROM documents WHERE job_seq = ? AND idx >= ? AND idx <= ?`).raw(true),
    someVectorLength: s(`SELECT length(COALESCE(d.vector, v.vector)) AS n FROM documents d LEFT JOIN vectors v ON v.id = d.vector_id
                         WHERE d.job_seq = ? AND d.state = ${DOC_DONE} LIMIT 1`),
    nextVectorId: s(`SELECT COALESCE(MAX(id), 0) + 1 FROM vectors`).pluck(),
    // Vectors 0..@n-1 of the blob (each @bytes long), in that order (a recursive CTE's queue is
    // FIFO): each new row's id is the largest + 1, so vector i gets the first's id + i. The ids are
    // not given: an insert at the table's end is then an append (no b-tree rebalancing).
    insertVectors: s(`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < @n)
                      INSERT OR FAIL INTO vectors (vector) SELECT substr(@blob, i * @bytes + 1, @bytes) FROM s`),
    deleteVector: s(`DELETE FROM vectors WHERE id = ?`),
    // By key: only in-job duplicates (dup = 1, every copy of a text that occurs again), which
    // the partial index documents_dup_key holds (migration 9).
    markDoneByKey: s(`UPDATE documents SET state = ${DOC_DONE}, vector_id = ?, truncated = ?
                      WHERE job_seq = ? AND cache_key = ? AND dup = 1 AND state = ${DOC_PENDING}`),
    markFailedByKey: s(`UPDATE documents SET state = ${DOC_FAILED}, code = ?, error = ?
                        WHERE job_seq = ? AND cache_key = ? AND dup = 1 AND state = ${DOC_PENDING}`),
    // Documents [from, to) that are pending: done, document idx with vector (? + idx); their indices.
    markDoneRange: s(`UPDATE OR FAIL documents SET state = ${DOC_DONE}, vector_id = ? + idx, truncated = ?
                      WHERE job_seq = ? AND idx >= ? AND idx < ? AND state = ${DOC_PENDING} RETURNING idx`).pluck(),
    failureCounts: s(`SELECT code, COUNT(*) AS n FROM documents WHERE job_seq = ? AND state = ${DOC_FAILED} GROUP BY code`),
    firstFailures: s(`SELECT idx AS "index", code, error FROM documents WHERE job_seq = ? AND state = ${DOC_FAILED} ORDER BY idx LIMIT ?`),
    markFailed: s(`UPDATE documents SET state = ${DOC_FAILED}, code = ?, error = ?
                   WHERE job_seq = ? AND idx = ? AND state = ${DOC_PENDING}`),
    addProgress: s(`UPDATE jobs SET completed_items = completed_items + ?, failed_items = failed_items + ?,
                      dimensions = COALESCE(?, dimensions) WHERE seq = ?`),
    markGenerated: s(`UPDATE documents SET state = ${DOC_DONE}, result = ? WHERE job_seq = ? AND idx = ? AND state = ${DOC_PENDING}`),
    // Raw mode: one array per row, in the column order of DocumentRow.
    readDocuments: s(`SELECT d.idx, d.state, COALESCE(d.vector, v.vector) AS vector, d.truncated, d.code, d.error, d.result
                      FROM documents d LEFT JOIN vectors v ON v.id = d.vector_id
                      WHERE d.job_seq = ? AND d.idx >= ? AND d.idx < ? ORDER BY d.idx`).raw(true),
    deleteJob: s(`DELETE FROM jobs WHERE seq = ?`),
    expiredIds: s(`SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?`),
    deleteExpired: s(`DELETE FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= ?`),
    unfinished: s(`SELECT * FROM jobs WHERE status IN ('pending', 'running') ORDER BY created_at, seq`),
    getCounter: s(`SELECT value FROM counters WHERE name = ?`),
    bumpCounter: s(`UPDATE counters SET value = value + 1 WHERE name = ?`),
    bumpOwnerCounter: s(`INSERT INTO owner_counters (owner, name, value) VALUES (?, ?, 1)
                         ON CONFLICT (owner, name) DO UPDATE SET value = value + 1`),
    getOwnerCounter: s(`SELECT value FROM owner_counters WHERE owner = ? AND name = ?`),
    countOwnerActive: s(`SELECT COUNT(*) AS n FROM jobs WHERE owner = ? AND status IN ('pending', 'running')`),
    countByStatus: s(`SELECT status, COUNT(*) AS n FROM jobs WHERE (@owner IS NULL OR owner = @owner) GROUP BY status`),
  };
}

function storeFull(cause?: StoreError): StoreError {
  return new StoreError(
    'STORE_FULL',
    "The job store's disk is full: new jobs are refused and running jobs wait until there is room. Jobs already stored are safe; " +
      'to make room, download and delete finished results (DELETE /api/batch/results/{job_id}), cancel jobs you no longer need, ' +
      'or free disk space on the data directory; writes resume by themselves',
    { cause },
  );
}
