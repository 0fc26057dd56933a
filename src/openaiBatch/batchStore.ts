/**
 * The BatchStore port: OpenAI Batch API batch records (the `BatchRecord` of objects.ts plus the
 * ids of the jobs that run its lines), owned like jobs (every read takes a scope). Two adapters
 * beside the file stores: SQLite (its own database file, `batches.sqlite` in the data directory)
 * and Redis (the deployment's prefix). A status change is a compare-and-set (`update` with the
 * states it may leave), so two finalisers, a cancel and a completion have exactly one winner.
 */
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import type { Scope } from '../jobs/model.js';
import { StoreError } from '../store/errors.js';
import { visibleTo } from '../store/files/types.js';
import type { BatchRecord, BatchStatus } from './objects.js';

/** One job of a batch: the lines of one (endpoint, model, options) group. */
export interface BatchJobRef {
  readonly group: string;
  readonly jobId: string | null;
  /** Lines of the group and items of its job (equal when each line is one item: live request_counts then come from the job). */
  readonly lines: number;
  readonly items: number;
  /** Why the group has no job (its model is not served, ...): its lines fail with this. */
  readonly error?: { readonly code: string; readonly message: string };
}

export interface StoredBatch extends BatchRecord {
  readonly jobs: readonly BatchJobRef[];
  /** Set when the completion window passed: finalisation ends in `expired`. */
  readonly ending?: 'expired';
}

export type BatchPatch = Partial<Omit<StoredBatch, 'id' | 'owner' | 'endpoint' | 'inputFileId' | 'completionWindow' | 'metadata'>>;

export interface BatchStore {
  put(batch: StoredBatch): Promise<void>;
  get(scope: Scope, id: string): Promise<StoredBatch | undefined>;
  /** Newest first, with OpenAI's `after` cursor (a batch id). */
  list(scope: Scope, query: { limit: number; after?: string }): Promise<{ batches: StoredBatch[]; hasMore: boolean }>;
  /** Applies `patch` only while the batch's status is one of `from`; the updated batch, or undefined. */
  update(id: string, from: readonly BatchStatus[], patch: BatchPatch): Promise<StoredBatch | undefined>;
  /** Batches not in a terminal status (the finaliser's work). */
  unfinished(): Promise<StoredBatch[]>;
  close(): Promise<void>;
}

export const TERMINAL_BATCH_STATUSES: readonly BatchStatus[] = ['completed', 'failed', 'expired', 'cancelled'];

function merge(batch: StoredBatch, patch: BatchPatch): StoredBatch {
  return { ...batch, ...patch, times: { ...batch.times, ...(patch.times ?? {}) } };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS batches (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  owner TEXT NOT NULL,
  status TEXT NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS batches_owner ON batches(owner, seq);
CREATE INDEX IF NOT EXISTS batches_status ON batches(status);
`;

export class SqliteBatchStore implements BatchStore {
  private readonly db: Database.Database;

  constructor(dataDir: string) {
    this.db = new Database(dataDir === ':memory:' ? ':memory:' : path.join(dataDir, 'batches.sqlite'));
    this.db.pragma('journal_mode = WAL');
    this.db.exec(SCHEMA);
  }

  async put(batch: StoredBatch): Promise<void> {
    this.guard(() => this.db.prepare(`INSERT INTO batches (id, owner, status, record) VALUES (?, ?, ?, ?)`).run(batch.id, batch.owner, batch.status, JSON.stringify(batch)));
  }

  async get(scope: Scope, id: string): Promise<StoredBatch | undefined> {
    const row = this.guard(() => this.db.prepare(`SELECT record FROM batches WHERE id = ?`).get(id) as { record: string } | undefined);
    const batch = row ? (JSON.parse(row.record) as StoredBatch) : undefined;
    return batch && visibleTo(scope, batch.owner) ? batch : undefined;
  }

  async list(scope: Scope, query: { limit: number; after?: string }): Promise<{ batches: StoredBatch[]; hasMore: boolean }> {
    const owner = scope.kind === 'admin' ? null : scope.owner;
    let after: number | null = null;
    if (query.after !== undefined) {
      const row = this.guard(() => this.db.prepare(`SELECT seq FROM batches WHERE id = ?`).get(query.after) as { seq: number } | undefined);
      if (!row) return { batches: [], hasMore: false };
      after = row.seq;
    }
    const rows = this.guard(
      () =>
        this.db
          .prepare(`SELECT record FROM batches WHERE (@owner IS NULL OR owner = @owner) AND (@after IS NULL OR seq < @after) ORDER BY seq DESC LIMIT @limit`)
          .all({ owner, after, limit: query.limit + 1 }) as { record: string }[],
    );
    return { batches: rows.slice(0, query.limit).map((r) => JSON.parse(r.record) as StoredBatch), hasMore: rows.length > query.limit };
  }

  async update(id: string, from: readonly BatchStatus[], patch: BatchPatch): Promise<StoredBatch | undefined> {
    return this.guard(() =>
      this.db.transaction((): StoredBatch | undefined => {
        const row = this.db.prepare(`SELECT record FROM batches WHERE id = ?`).get(id) as { record: string } | undefined;
        if (!row) return undefined;
        const batch = JSON.parse(row.record) as StoredBatch;
        if (!from.includes(batch.status)) return undefined;
        const next = merge(batch, patch);
        this.db.prepare(`UPDATE batches SET status = ?, record = ? WHERE id = ?`).run(next.status, JSON.stringify(next), id);
        return next;
      })(),
    );
  }

  async unfinished(): Promise<StoredBatch[]> {
    const rows = this.guard(() => this.db.prepare(`SELECT record FROM batches WHERE status NOT IN ('completed', 'failed', 'expired', 'cancelled') ORDER BY seq`).all() as { record: string }[]);
    return rows.map((r) => JSON.parse(r.record) as StoredBatch);
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private guard<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'SQLITE_FULL') throw new StoreError('STORE_FULL', 'The batch store is full', { cause: error });
      if (typeof code === 'string' && code.startsWith('SQLITE_')) throw new StoreError('STORE_UNAVAILABLE', 'The batch store is unavailable', { cause: error });
      throw error;
    }
  }
}

/**
 * On Redis, under the deployment's prefix:
 *   batch:<id>             STRING the record (JSON)
 *   batches:all            ZSET   id by seq (the admin's list)
 *   batches:owner:<owner>  ZSET   id by seq
 *   batches:open           SET    ids not terminal
 *   batch:seq              STRING INCR counter giving the list order
 * `update` is one Lua script (read, check the status, write), so it is atomic across gateways.
 */
const UPDATE_SCRIPT = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local batch = cjson.decode(raw)
local allowed = cjson.decode(ARGV[1])
local ok = false
for _, s in ipairs(allowed) do if s == batch.status then ok = true end end
if not ok then return false end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] == '1' then redis.call('SREM', KEYS[2], ARGV[4]) end
return ARGV[2]
`;

export class RedisBatchStore implements BatchStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string): string {
    return `${this.prefix}batch:${id}`;
  }

  async put(batch: StoredBatch): Promise<void> {
    await this.guard(async () => {
      const seq = await this.redis.incr(`${this.prefix}batch:seq`);
      const multi = this.redis
        .multi()
        .set(this.key(batch.id), JSON.stringify(batch))
        .zadd(`${this.prefix}batches:all`, seq, batch.id)
        .zadd(`${this.prefix}batches:owner:${batch.owner}`, seq, batch.id);
      if (!TERMINAL_BATCH_STATUSES.includes(batch.status)) multi.sadd(`${this.prefix}batches:open`, batch.id);
      await multi.exec();
    });
  }

  async get(scope: Scope, id: string): Promise<StoredBatch | undefined> {
    const batch = await this.read(id);
    return batch && visibleTo(scope, batch.owner) ? batch : undefined;
  }

  async list(scope: Scope, query: { limit: number; after?: string }): Promise<{ batches: StoredBatch[]; hasMore: boolean }> {
    const key = scope.kind === 'admin' ? `${this.prefix}batches:all` : `${this.prefix}batches:owner:${scope.owner}`;
    let max = '+inf';
    if (query.after !== undefined) {
      const score = await this.guard(() => this.redis.zscore(key, query.after!));
      if (score === null) return { batches: [], hasMore: false };
      max = `(${score}`;
    }
    const ids = await this.guard(() => this.redis.zrevrangebyscore(key, max, '-inf', 'LIMIT', 0, query.limit + 1));
    const batches: StoredBatch[] = [];
    for (const id of ids.slice(0, query.limit)) {
      const batch = await this.read(id);
      if (batch) batches.push(batch);
    }
    return { batches, hasMore: ids.length > query.limit };
  }

  async update(id: string, from: readonly BatchStatus[], patch: BatchPatch): Promise<StoredBatch | undefined> {
    const current = await this.read(id);
    if (!current || !from.includes(current.status)) return undefined;
    const next = merge(current, patch);
    const terminal = TERMINAL_BATCH_STATUSES.includes(next.status) ? '1' : '0';
    // The script re-checks the status it finds, so a concurrent update between the read and the write loses.
    const written = await this.guard(() => this.redis.eval(UPDATE_SCRIPT, 2, this.key(id), `${this.prefix}batches:open`, JSON.stringify([current.status]), JSON.stringify(next), terminal, id));
    return written ? next : undefined;
  }

  async unfinished(): Promise<StoredBatch[]> {
    const ids = await this.guard(() => this.redis.smembers(`${this.prefix}batches:open`));
    const batches: StoredBatch[] = [];
    for (const id of ids) {
      const batch = await this.read(id);
      if (batch && !TERMINAL_BATCH_STATUSES.includes(batch.status)) batches.push(batch);
    }
    return batches;
  }

  async close(): Promise<void> {
    // The connection is the job store's; it closes it.
  }

  private async read(id: string): Promise<StoredBatch | undefined> {
    const raw = await this.guard(() => this.redis.get(this.key(id)));
    return raw ? (JSON.parse(raw) as StoredBatch) : undefined;
  }

  private async guard<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const message = String((error as Error).message ?? error);
      if (/OOM/.test(message)) throw new StoreError('STORE_FULL', 'Redis is out of memory for the batch', { cause: error });
      throw new StoreError('STORE_UNAVAILABLE', 'The batch store (Redis) is unavailable', { cause: error });
    }
  }
}
