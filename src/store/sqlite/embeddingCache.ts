/**
 * The content cache inside the embedded store: vectors by cache key, bounded in bytes,
 * least recently used evicted first. Every function runs inside the caller's transaction.
 * Hits are resolved in SQL (UPDATE ... FROM), so a resubmitted 10,000-document job is
 * answered from the cache in one statement, without a backend call.
 */
import type { Database as DB, Statement } from 'better-sqlite3';
import { DOC_DONE, DOC_PENDING } from './rows.js';

export interface CachePolicy {
  /** Most bytes of vectors kept; 0 disables the cache. */
  readonly maxBytes: number;
}

const EVICT_BATCH = 256;

export interface CacheEntry {
  readonly key: Buffer;
  readonly vector: Buffer;
  readonly truncated: boolean;
}

export class EmbeddingCacheTable {
  private readonly stmt: ReturnType<typeof prepare>;

  constructor(db: DB, readonly policy: CachePolicy) {
    this.stmt = prepare(db);
  }

  get enabled(): boolean {
    return this.policy.maxBytes > 0;
  }

  /** The cached vector for `key`, marking it recently used; undefined on a miss. */
  lookup(key: Buffer, now: number): { vector: Buffer; truncated: number } | undefined {
    if (!this.enabled) return undefined;
    const hit = this.stmt.get.get(key) as { entry: number; vector: Buffer; truncated: number } | undefined;
    if (!hit) return undefined;
    this.stmt.touch.run(now, hit.entry);
    return { vector: hit.vector, truncated: hit.truncated };
  }

  /** Marks a job's pending documents done from the cache; returns how many. */
  fillJob(jobSeq: number, now: number): number {
    if (!this.enabled) return 0;
    this.stmt.touchForJob.run(now, jobSeq);
    return this.stmt.fillJob.run(jobSeq).changes;
  }

  /** The same for the pending documents of [from, to), just before they would be sent. */
  fillRange(jobSeq: number, from: number, to: number, now: number): number {
    if (!this.enabled) return 0;
    this.stmt.touchForRange.run(now, jobSeq, from, to);
    return this.stmt.fillRange.run(jobSeq, from, to).changes;
  }

  /** Stores computed vectors, keeps the byte count, and evicts when over the bound. */
  putMany(entries: readonly CacheEntry[], now: number): void {
    if (!this.enabled || entries.length === 0) return;
    let added = 0;
    for (const entry of entries) {
      const inserted = this.stmt.insert.run(entry.key, entry.vector, entry.truncated ? 1 : 0);
      if (inserted.changes !== 1) continue;
      this.stmt.insertUsage.run(inserted.lastInsertRowid, entry.vector.byteLength, now);
      added += entry.vector.byteLength;
    }
    if (added > 0) this.stmt.addCounter.run(added, 'cache_bytes');
    this.evictOverflow();
  }

  /** Deletes least recently used entries until the cache fits its bound again. */
  evictOverflow(): void {
    if (!this.enabled) return;
    let excess = (this.stmt.getCounter.get('cache_bytes') as { value: number }).value - this.policy.maxBytes;
    while (excess > 0) {
      const oldest = this.stmt.oldest.all(EVICT_BATCH) as { entry: number; bytes: number }[];
      if (oldest.length === 0) return;
      let freed = 0;
      for (const entry of oldest) {
        if (excess - freed <= 0) break;
        this.stmt.remove.run(entry.entry);
        this.stmt.removeUsage.run(entry.entry);
        freed += entry.bytes;
      }
      this.stmt.addCounter.run(-freed, 'cache_bytes');
      excess -= freed;
    }
  }

  countHits(n: number): void {
    if (n > 0) this.stmt.addCounter.run(n, 'cache_hits');
  }

  countMisses(n: number): void {
    if (n > 0 && this.enabled) this.stmt.addCounter.run(n, 'cache_misses');
  }

  stats(): { entries: number; bytes: number; hits: number; misses: number } {
    const counter = (name: string): number => (this.stmt.getCounter.get(name) as { value: number }).value;
    return {
      entries: (this.stmt.count.get() as { n: number }).n,
      bytes: counter('cache_bytes'),
      hits: counter('cache_hits'),
      misses: counter('cache_misses'),
    };
  }
}

function prepare(db: DB) {
  const s = (sql: string): Statement => db.prepare(sql);
  const pendingWithKey = `documents.job_seq = ? AND documents.state = ${DOC_PENDING} AND documents.cache_key IS NOT NULL`;
  return {
    fillJob: s(`UPDATE documents SET state = ${DOC_DONE}, vector = c.vector, truncated = c.truncated
                FROM embedding_cache c WHERE ${pendingWithKey} AND documents.cache_key = c.key`),
    fillRange: s(`UPDATE documents SET state = ${DOC_DONE}, vector = c.vector, truncated = c.truncated
                  FROM embedding_cache c WHERE ${pendingWithKey} AND documents.idx >= ? AND documents.idx < ?
                  AND documents.cache_key = c.key`),
    touchForJob: s(`UPDATE embedding_cache_lru SET used_at = ? WHERE entry IN
                    (SELECT c.rowid FROM documents d JOIN embedding_cache c ON c.key = d.cache_key
                     WHERE d.job_seq = ? AND d.state = ${DOC_PENDING} AND d.cache_key IS NOT NULL)`),
    touchForRange: s(`UPDATE embedding_cache_lru SET used_at = ? WHERE entry IN
                      (SELECT c.rowid FROM documents d JOIN embedding_cache c ON c.key = d.cache_key
                       WHERE d.job_seq = ? AND d.idx >= ? AND d.idx < ? AND d.state = ${DOC_PENDING} AND d.cache_key IS NOT NULL)`),
    get: s(`SELECT rowid AS entry, vector, truncated FROM embedding_cache WHERE key = ?`),
    touch: s(`UPDATE embedding_cache_lru SET used_at = ? WHERE entry = ?`),
    insert: s(`INSERT OR IGNORE INTO embedding_cache (key, vector, truncated) VALUES (?, ?, ?)`),
    insertUsage: s(`INSERT OR REPLACE INTO embedding_cache_lru (entry, bytes, used_at) VALUES (?, ?, ?)`),
    oldest: s(`SELECT entry, bytes FROM embedding_cache_lru ORDER BY used_at LIMIT ?`),
    remove: s(`DELETE FROM embedding_cache WHERE rowid = ?`),
    removeUsage: s(`DELETE FROM embedding_cache_lru WHERE entry = ?`),
    count: s(`SELECT COUNT(*) AS n FROM embedding_cache`),
    getCounter: s(`SELECT value FROM counters WHERE name = ?`),
    addCounter: s(`UPDATE counters SET value = value + ? WHERE name = ?`),
  };
}
