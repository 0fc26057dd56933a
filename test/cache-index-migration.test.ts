/**
 * Migration 8 stores each vector once (`vectors`) and drops the index on the content cache's
 * hash keys, which are indexed in memory instead (embeddingCache.ts). A schema-7 file
 * upgraded keeps its jobs, their results and its cache; the in-memory index follows rollbacks and
 * never confuses two keys that share the bits it is indexed by.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { ADMIN_SCOPE } from '../src/jobs/model.js';
import { cacheKey, cacheKeyPrefix } from '../src/store/cacheKey.js';
import { EmbeddingCacheTable, type CacheEntry } from '../src/store/sqlite/embeddingCache.js';
import { migrate, SCHEMA_VERSION } from '../src/store/sqlite/migrations.js';
import { openSqliteStore } from '../src/store/sqlite/sqliteStore.js';
import { tempDir } from './helpers.js';

const OPTIONS = { truncate: true };
const vectorOf = (n: number): Float32Array => new Float32Array([n, n + 0.5, -n]);
const blobOf = (n: number): Buffer => Buffer.from(vectorOf(n).buffer);

test('a schema-7 data directory upgraded by migration 8 keeps its jobs, results and content cache', async (t) => {
  const dir = tempDir(t);
  const old = new Database(path.join(dir, 'sollol.db'));
  old.pragma('page_size = 16384');
  old.pragma('journal_mode = WAL');
  migrate(old, 7);
  const texts = ['alpha', 'beta', 'gamma'];
  const prefix = cacheKeyPrefix('m', OPTIONS);
  const seq = old
    .prepare(`INSERT INTO jobs (id, owner, type, model, status, created_at, completed_at, total_items, completed_items, dimensions, metadata, options)
              VALUES ('old-job', 'anonymous', 'embed', 'm', 'completed', 1, 2, 3, 3, 3, '{}', ?)`)
    .run(JSON.stringify(OPTIONS)).lastInsertRowid;
  texts.forEach((text, i) => {
    const key = cacheKey(prefix, text);
    old.prepare(`INSERT INTO documents (job_seq, idx, state, text, vector, truncated, cache_key) VALUES (?, ?, 1, ?, ?, 0, ?)`).run(seq, i, text, blobOf(i), key);
    const entry = old.prepare(`INSERT INTO embedding_cache (key, vector, truncated) VALUES (?, ?, 0)`).run(key, blobOf(i)).lastInsertRowid;
    old.prepare(`INSERT INTO embedding_cache_lru (entry, bytes, used_at) VALUES (?, 12, ?)`).run(entry, 100 + i);
  });
  old.prepare(`UPDATE counters SET value = 36 WHERE name = 'cache_bytes'`).run();
  old.close();

  const store = openSqliteStore(dir, { cache: { maxBytes: 1 << 20 } });
  t.after(() => store.close());
  assert.equal(store.database.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  const results = await store.readResults(ADMIN_SCOPE, 'old-job', 0, 10);
  assert.deepEqual(results.map((r) => (r.state === 'done' ? [...r.vector] : r.state)), texts.map((_, i) => [...vectorOf(i)]));
  assert.deepEqual(await store.cacheStats(), { enabled: true, max_bytes: 1 << 20, entries: 3, bytes: 36, hits: 0, misses: 0 });

  // The same texts again: every one answered from the upgraded cache at admission.
  const admitted = await store.admit(
    { id: 'new-job', owner: 'anonymous', model: 'm', status: 'running', createdAt: 3, metadata: {}, options: OPTIONS, documents: ['gamma', 'alpha', 'delta'] },
    { maxJobs: 10, now: 3 },
  );
  assert.ok(admitted.admitted);
  assert.equal(admitted.job.completedItems, 2);
  const fresh = await store.readResults(ADMIN_SCOPE, 'new-job', 0, 10);
  assert.deepEqual(fresh.map((r) => (r.state === 'done' ? [...r.vector] : r.state)), [[...vectorOf(2)], [...vectorOf(0)], 'pending']);
  assert.equal((await store.cacheStats()).hits, 2);
  // The cached vectors moved to `vectors` once; the hits refer to those rows, copying nothing.
  const db = store.database;
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM vectors').get() as { n: number }).n, 3);
  assert.equal((db.prepare(`SELECT COUNT(*) AS n FROM documents d JOIN embedding_cache_entries c ON c.vector_id = d.vector_id WHERE d.vector IS NULL`).get() as { n: number }).n, 2);
  // The old job's inline vectors go with it; the cache's rows stay.
  assert.equal(await store.purge(ADMIN_SCOPE, 'old-job'), 'purged');
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM vectors').get() as { n: number }).n, 3);
  assert.deepEqual((await store.readResults(ADMIN_SCOPE, 'new-job', 0, 2)).map((r) => r.state), ['done', 'done']);
});

function cacheOnMemory(maxBytes: number): { db: Database.Database; cache: EmbeddingCacheTable } {
  const db = new Database(':memory:');
  migrate(db);
  return { db, cache: new EmbeddingCacheTable(db, { maxBytes }) };
}

/** As the store's write path runs a transaction: the index follows its commit or rollback. */
function inTransaction(db: Database.Database, cache: EmbeddingCacheTable, body: () => void): void {
  try {
    db.transaction(body).immediate();
  } catch (error) {
    cache.rollback();
    throw error;
  }
  cache.commit();
}

/** A computed vector as the store writes it: a row of `vectors`, then the cache entry referring to it. */
function entryOf(db: Database.Database, key: Buffer, n: number): CacheEntry {
  const vectorId = Number(db.prepare('INSERT INTO vectors (vector) VALUES (?)').run(blobOf(n)).lastInsertRowid);
  return { key, vectorId, bytes: 12, truncated: false };
}

function vectorOfHit(db: Database.Database, hit: { vectorId: number } | undefined): number[] | undefined {
  if (!hit) return undefined;
  const row = db.prepare('SELECT vector FROM vectors WHERE id = ?').get(hit.vectorId) as { vector: Buffer } | undefined;
  return row ? [...new Float32Array(new Uint8Array(row.vector).buffer)] : undefined;
}

const countVectors = (db: Database.Database): number => (db.prepare('SELECT COUNT(*) AS n FROM vectors').get() as { n: number }).n;

test('a rolled-back transaction leaves the in-memory key index as it was: no entry added, none lost', () => {
  const { db, cache } = cacheOnMemory(24);
  const key = (n: number): Buffer => Buffer.alloc(32, n);
  inTransaction(db, cache, () => cache.putMany([entryOf(db, key(1), 1), entryOf(db, key(2), 2)], 1));
  assert.ok(cache.lookup(key(1), 2));
  assert.ok(cache.lookup(key(2), 3));

  // Key 3 evicts key 1 (least recently used), then the transaction fails.
  assert.throws(() =>
    inTransaction(db, cache, () => {
      cache.putMany([entryOf(db, key(3), 3)], 4);
      assert.equal(cache.lookup(key(1), 5), undefined);
      assert.ok(cache.lookup(key(3), 5));
      throw new Error('fault after the cache writes');
    }),
  );
  assert.deepEqual(vectorOfHit(db, cache.lookup(key(1), 6)), [...vectorOf(1)]);
  assert.ok(cache.lookup(key(2), 6));
  assert.equal(cache.lookup(key(3), 6), undefined);
  assert.equal(cache.stats().entries, 2);
  assert.equal(countVectors(db), 2);

  // The same writes committed: key 3 is in, the least recently used (key 1) is out with its vector row.
  inTransaction(db, cache, () => cache.putMany([entryOf(db, key(3), 3)], 7));
  assert.equal(cache.lookup(key(1), 8), undefined);
  assert.deepEqual(vectorOfHit(db, cache.lookup(key(3), 8)), [...vectorOf(3)]);
  assert.equal(countVectors(db), 2);
  db.close();
});

test('two keys sharing the in-memory index\'s first 48 bits are never confused', () => {
  const { db, cache } = cacheOnMemory(1 << 20);
  const first = Buffer.alloc(32, 7);
  const twin = Buffer.alloc(32, 7);
  twin[31] = 8;
  inTransaction(db, cache, () => cache.putMany([entryOf(db, first, 1), entryOf(db, twin, 2)], 1));
  assert.deepEqual(vectorOfHit(db, cache.lookup(first, 2)), [...vectorOf(1)]);
  assert.equal(cache.lookup(twin, 2), undefined, 'the twin is not cached, and never answered with the first key\'s vector');
  assert.equal(cache.stats().entries, 1);
  db.close();
});
