/**
 * Migration 5 moves the content cache's recency from a table keyed by cache key to one keyed
 * by the entry's rowid: entries and their recency written by schema 4 must survive it (hits,
 * least recently used evicted first).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { EmbeddingCacheTable } from '../src/store/sqlite/embeddingCache.js';
import { migrate, SCHEMA_VERSION } from '../src/store/sqlite/migrations.js';

test('cache entries and their recency written by schema 4 survive migration 5', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-lru-'));
  try {
    const file = path.join(dir, 'sollol.db');
    const old = new Database(file);
    migrate(old, 4);
    const key = (n: number): Buffer => Buffer.alloc(32, n);
    const vector = (n: number): Buffer => Buffer.from(new Float32Array(4).fill(n).buffer);
    for (const [n, usedAt] of [[1, 300], [2, 100], [3, 200]] as const) {
      old.prepare('INSERT INTO embedding_cache (key, vector, truncated) VALUES (?, ?, 0)').run(key(n), vector(n));
      old.prepare('INSERT INTO embedding_cache_usage (key, bytes, used_at) VALUES (?, 16, ?)').run(key(n), usedAt);
    }
    old.prepare(`UPDATE counters SET value = 48 WHERE name = 'cache_bytes'`).run();
    old.close();

    const db = new Database(file);
    migrate(db);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    // Migration 8 moved the recency into embedding_cache_entries, beside the key.
    assert.deepEqual(db.prepare('SELECT bytes, used_at FROM embedding_cache_entries ORDER BY used_at').all(), [
      { bytes: 16, used_at: 100 },
      { bytes: 16, used_at: 200 },
      { bytes: 16, used_at: 300 },
    ]);
    // Room for two entries: the least recently used (key 2, used at 100) goes first.
    const cache = new EmbeddingCacheTable(db, { maxBytes: 32 });
    cache.evictOverflow();
    assert.equal(cache.lookup(key(2), 400), undefined);
    const stored = (id: number): Buffer => (db.prepare('SELECT vector FROM vectors WHERE id = ?').get(id) as { vector: Buffer }).vector;
    assert.deepEqual(new Float32Array(new Uint8Array(stored(cache.lookup(key(3), 500)!.vectorId)).buffer)[0], 3);
    // Key 3 was just used: adding one more entry now evicts key 1 (used at 300), not key 3.
    const vectorId = Number(db.prepare('INSERT INTO vectors (vector) VALUES (?)').run(vector(4)).lastInsertRowid);
    cache.putMany([{ key: key(4), vectorId, bytes: 16, truncated: false }], 600);
    assert.equal(cache.lookup(key(1), 700), undefined);
    assert.ok(cache.lookup(key(3), 700));
    assert.ok(cache.lookup(key(4), 700));
    assert.equal(cache.stats().entries, 2);
    db.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
