/**
 * The content cache inside the embedded store: vectors by cache key, bounded in bytes,
 * least recently used evicted first. Every function runs inside the caller's transaction.
 * An entry refers to a row of the `vectors` table, shared with the documents that hold the
 * same vector (migration 8): a hit copies no bytes, and the row goes with its last referrer.
 *
 * Entries are keyed by a number that grows with insertion, never by the (hash) cache key:
 * an index on random keys dirties one random 16 KiB page per insert and one per eviction,
 * which made a document's cost grow with the cache's size (migration 8). The key is stored
 * in the entry and indexed here, in memory, by its first 48 bits
 * (a JavaScript number; shortKeyIndex.ts); a hit is confirmed against the full stored key, so two keys that
 * share those bits are never confused (the later one is simply not cached). The in-memory
 * index follows the transaction: changes made inside one are undone when it rolls back
 * (`rollback`, called by the store's write path).
 */
import type { Database as DB, Statement } from 'better-sqlite3';
import { DOC_DONE, DOC_PENDING } from './rows.js';
import { ShortKeyIndex } from './shortKeyIndex.js';

export interface CachePolicy {
  /** Most bytes of vectors kept; 0 disables the cache. */
  readonly maxBytes: number;
}

const EVICT_BATCH = 256;

export interface CacheEntry {
  readonly key: Buffer;
  /** The row of `vectors` holding it. */
  readonly vectorId: number;
  readonly bytes: number;
  readonly truncated: boolean;
}

/** A hit: the vector's row, and whether it was truncated. */
export interface CacheHit {
  readonly vectorId: number;
  readonly truncated: number;
}

/**
 * The in-memory index's key: the first 48 bits of the (SHA-256) cache key, big-endian, so that
 * SQL can hand it over as text (`SHORT_KEY_HEX`) instead of the key as a Buffer.
 */
function shortKey(key: Buffer): number {
  return key.readUIntBE(0, 6);
}

/** shortKey of a document's cache_key, as hexadecimal text (parsed by {@link shortKeyOfHex}). */
const SHORT_KEY_HEX = 'hex(substr(cache_key, 1, 6))';

function shortKeyOfHex(hex: string): number {
  return parseInt(hex, 16);
}

export class EmbeddingCacheTable {
  private readonly db: DB;
  private readonly stmt: ReturnType<typeof prepare>;
  /** shortKey(key) -> entry, outside the JavaScript heap (shortKeyIndex.ts). */
  private readonly index: ShortKeyIndex;
  /** What the open transaction changed in `index`, oldest first: [short key, the entry it had]. */
  private undo: [number, number | undefined][] = [];

  /** `keyIndex: false`: a reading connection's table (figures only), which never builds the in-memory index. */
  constructor(db: DB, readonly policy: CachePolicy, keyIndex = true) {
    this.db = db;
    this.stmt = prepare(db);
    this.index = new ShortKeyIndex(keyIndex ? (this.stmt.count.get() as { n: number }).n : 0);
    if (!keyIndex) return;
    for (const row of this.stmt.allKeys.iterate() as Iterable<{ entry: number; key: Buffer }>) this.index.set(shortKey(row.key), row.entry);
  }

  get enabled(): boolean {
    return this.policy.maxBytes > 0;
  }

  /** The open transaction committed: its changes to the in-memory index stay. */
  commit(): void {
    this.undo = [];
  }

  /** The open transaction rolled back: the in-memory index is put back as it was before it. */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const [short, entry] = this.undo[i]!;
      if (entry === undefined) this.index.delete(short);
      else this.index.set(short, entry);
    }
    this.undo = [];
  }

  private setIndex(short: number, entry: number | undefined): void {
    if (this.db.inTransaction) this.undo.push([short, this.index.get(short)]);
    if (entry === undefined) this.index.delete(short);
    else this.index.set(short, entry);
  }

  /** The cached vector for `key`, marking it recently used; undefined on a miss. */
  lookup(key: Buffer, now: number): CacheHit | undefined {
    if (!this.enabled) return undefined;
    const entry = this.index.get(shortKey(key));
    if (entry === undefined) return undefined;
    const hit = this.stmt.get.get(entry) as { key: Buffer; vector_id: number; truncated: number } | undefined;
    if (!hit || !hit.key.equals(key)) return undefined;
    this.stmt.touch.run(now, entry);
    return { vectorId: hit.vector_id, truncated: hit.truncated };
  }

  /** Whether `key` is cached, without marking it used (a read). */
  has(key: Buffer): boolean {
    if (!this.enabled) return false;
    const entry = this.index.get(shortKey(key));
    if (entry === undefined) return false;
    const row = this.stmt.get.get(entry) as { key: Buffer } | undefined;
    return row !== undefined && row.key.equals(key);
  }

  /** Entries in the in-memory index. */
  get size(): number {
    return this.index.size;
  }

  /** Marks a job's pending documents done from the cache; returns how many. */
  fillJob(jobSeq: number, now: number): number {
    if (!this.enabled || this.index.size === 0) return 0;
    return this.fill(this.stmt.pendingOfJob.all(jobSeq) as [idx: number, short: string][], jobSeq, now);
  }

  /** The same for the pending documents of [from, to), just before they would be sent. */
  fillRange(jobSeq: number, from: number, to: number, now: number): number {
    if (!this.enabled || this.index.size === 0) return 0;
    return this.fill(this.stmt.pendingOfRange.all(jobSeq, from, to) as [idx: number, short: string][], jobSeq, now);
  }

  /** Rows [idx, short key as hex]: only a document whose short key is indexed has its key read. */
  private fill(rows: readonly (readonly [idx: number, short: string])[], jobSeq: number, now: number): number {
    let filled = 0;
    for (const [idx, short] of rows) {
      if (!this.index.has(shortKeyOfHex(short))) continue;
      const hit = this.lookup(this.stmt.documentKey.get(jobSeq, idx) as Buffer, now);
      if (hit) filled += this.stmt.markDone.run(hit.vectorId, hit.truncated, jobSeq, idx).changes;
    }
    return filled;
  }

  /** Stores computed vectors, keeps the byte count, and evicts when over the bound. */
  putMany(entries: readonly CacheEntry[], now: number): void {
    if (!this.enabled || entries.length === 0) return;
    let added = 0;
    let count = 0;
    for (const entry of entries) {
      const short = shortKey(entry.key);
      // Cached already, or another key with the same 48 bits is: keep the one there.
      if (this.index.has(short)) continue;
      const inserted = this.stmt.insert.run(entry.key, entry.vectorId, entry.truncated ? 1 : 0, entry.bytes, now);
      this.setIndex(short, Number(inserted.lastInsertRowid));
      added += entry.bytes;
      count++;
    }
    if (added > 0) this.stmt.addCounter.run(added, 'cache_bytes');
    this.evictOverflow(count > 0 ? added / count : 0);
  }

  /**
   * Deletes least recently used entries until the cache fits its bound again. `entryBytes`, a
   * typical entry's size, sizes the read: a full cache evicts about one entry per entry added,
   * and reading EVICT_BATCH rows (keys included) to delete 64 cost 10 % of a chunk's write.
   */
  evictOverflow(entryBytes = 0): void {
    if (!this.enabled) return;
    let excess = (this.stmt.getCounter.get('cache_bytes') as { value: number }).value - this.policy.maxBytes;
    while (excess > 0) {
      const wanted = entryBytes > 0 ? Math.min(EVICT_BATCH, Math.ceil(excess / entryBytes)) : EVICT_BATCH;
      const oldest = this.stmt.oldest.all(wanted) as { entry: number; bytes: number; key: Buffer }[];
      if (oldest.length === 0) return;
      let freed = 0;
      for (const entry of oldest) {
        if (excess - freed <= 0) break;
        // The vector row goes too unless a document still holds it (trigger cache_free_vector).
        this.stmt.remove.run(entry.entry);
        const short = shortKey(entry.key);
        if (this.index.get(short) === entry.entry) this.setIndex(short, undefined);
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
  const pendingWithKey = `job_seq = ? AND state = ${DOC_PENDING} AND cache_key IS NOT NULL`;
  return {
    allKeys: s(`SELECT entry, key FROM embedding_cache_entries ORDER BY entry`),
    // Raw mode: [idx, short key as hex] per row (no Buffer per document).
    pendingOfJob: s(`SELECT idx, ${SHORT_KEY_HEX} FROM documents WHERE ${pendingWithKey}`).raw(true),
    pendingOfRange: s(`SELECT idx, ${SHORT_KEY_HEX} FROM documents WHERE ${pendingWithKey} AND idx >= ? AND idx < ?`).raw(true),
    documentKey: s(`SELECT cache_key FROM documents WHERE job_seq = ? AND idx = ?`).pluck(),
    markDone: s(`UPDATE documents SET state = ${DOC_DONE}, vector_id = ?, truncated = ? WHERE job_seq = ? AND idx = ? AND state = ${DOC_PENDING}`),
    get: s(`SELECT key, vector_id, truncated FROM embedding_cache_entries WHERE entry = ?`),
    touch: s(`UPDATE embedding_cache_entries SET used_at = ? WHERE entry = ?`),
    insert: s(`INSERT INTO embedding_cache_entries (key, vector_id, truncated, bytes, used_at) VALUES (?, ?, ?, ?, ?)`),
    oldest: s(`SELECT entry, bytes, key FROM embedding_cache_entries ORDER BY used_at LIMIT ?`),
    remove: s(`DELETE FROM embedding_cache_entries WHERE entry = ?`),
    count: s(`SELECT COUNT(*) AS n FROM embedding_cache_entries`),
    getCounter: s(`SELECT value FROM counters WHERE name = ?`),
    addCounter: s(`UPDATE counters SET value = value + ? WHERE name = ?`),
  };
}
