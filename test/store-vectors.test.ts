/**
 * One stored copy per computed vector (migration 8): documents, their duplicates, cache hits
 * and a retry's copy refer to one row of `vectors`, and the row is deleted exactly when the
 * last document or cache entry referring to it goes, whichever path deletes it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { ADMIN_SCOPE } from '../src/jobs/model.js';
import { openSqliteStore, type SqliteJobStore } from '../src/store/sqlite/sqliteStore.js';
import { tempDir } from './helpers.js';

const OPTIONS = { truncate: true };
/** 3 dims, 12 bytes: a vector per text, distinct per text. */
const vectorFor = (text: string): Float32Array => new Float32Array([text.length, text.charCodeAt(0), 1]);

function counts(store: SqliteJobStore): { vectors: number; referenced: number; dangling: number } {
  const db = store.database;
  const n = (sql: string): number => (db.prepare(sql).get() as { n: number }).n;
  const referenced = `SELECT vector_id FROM documents WHERE vector_id IS NOT NULL UNION SELECT vector_id FROM embedding_cache_entries`;
  return {
    vectors: n('SELECT COUNT(*) AS n FROM vectors'),
    referenced: n(`SELECT COUNT(*) AS n FROM (${referenced})`),
    dangling: n(`SELECT COUNT(*) AS n FROM (${referenced}) r WHERE r.vector_id NOT IN (SELECT id FROM vectors)`),
  };
}

/** Every vector row is referenced and every reference has its row. */
function assertExact(store: SqliteJobStore, vectors: number): void {
  const c = counts(store);
  assert.deepEqual(c, { vectors, referenced: vectors, dangling: 0 });
}

let clock = 1000;

async function runJob(store: SqliteJobStore, id: string, texts: string[], maxJobs = 100): Promise<void> {
  const admitted = await store.admit(
    { id, owner: 'anonymous', model: 'm', status: 'running', createdAt: clock++, metadata: {}, options: OPTIONS, documents: texts },
    { maxJobs, now: clock++ },
  );
  assert.ok(admitted.admitted);
  const pending = await store.pendingDocuments(id, 0, texts.length);
  await store.recordChunk(id, { done: pending.map((p) => ({ index: p.index, vector: vectorFor(p.text), truncated: false })), failed: [] });
  await store.transition(id, 'completed', { at: clock++, expiresAt: clock + 1_000_000 });
}

async function vectorsOf(store: SqliteJobStore, id: string): Promise<number[][]> {
  return (await store.readResults(ADMIN_SCOPE, id, 0, 100)).map((r) => (r.state === 'done' ? [...r.vector] : []));
}

test('a vector row is shared by its documents, duplicates, cache hits and retries, and freed with its last referrer', async () => {
  // Room in the cache for two 12-byte vectors.
  const store = openSqliteStore(':memory:', { cache: { maxBytes: 24 } });
  try {
    await runJob(store, 'a', ['one', 'two', 'two', 'three']);
    // Three distinct texts: three rows (the duplicate refers to its twin's), two also cached.
    assertExact(store, 3);
    assert.equal((await store.cacheStats()).entries, 2);
    assert.deepEqual(await vectorsOf(store, 'a'), ['one', 'two', 'two', 'three'].map((t) => [...vectorFor(t)]));

    // Hits on cached texts refer to the cached rows; 'four' is new.
    const cached = (store.database.prepare('SELECT d.text FROM documents d JOIN embedding_cache_entries c ON c.vector_id = d.vector_id').all() as { text: string }[]).map((r) => r.text);
    await runJob(store, 'b', [cached[0]!, 'four']);
    assertExact(store, 4);

    // A retry copies references, not vectors.
    const retried = await store.admitRetry(ADMIN_SCOPE, 'a', { id: 'a2', owner: 'anonymous', status: 'running', createdAt: clock++ }, { maxJobs: 100, now: clock++ });
    assert.ok(retried !== 'not-found' && retried !== 'active' && retried.admitted);
    assertExact(store, 4);
    assert.deepEqual(await vectorsOf(store, 'a2'), await vectorsOf(store, 'a'));

    // Purging the original keeps every row its retry still refers to.
    assert.equal(await store.purge(ADMIN_SCOPE, 'a'), 'purged');
    assertExact(store, 4);
    await store.transition('a2', 'completed', { at: clock++, expiresAt: clock + 1_000_000 });
    assert.equal(await store.purge(ADMIN_SCOPE, 'a2'), 'purged');
    // Left: b's two rows and whatever the cache still holds.
    assertExact(store, counts(store).referenced);
    assert.ok(counts(store).vectors >= 2);

    // Cache eviction: new texts push the old entries out; rows no document holds go with them.
    await runJob(store, 'c', ['five', 'six', 'seven']);
    assertExact(store, counts(store).referenced);

    // Expiry sweep and eviction for room (cascades to the documents) free the rest but the cache's.
    assert.deepEqual(await store.sweepExpired(clock + 2_000_000), ['b', 'c']);
    assertExact(store, 2);
    await runJob(store, 'd', ['eight'], 1);
    await runJob(store, 'e', ['nine'], 1);
    assert.equal((await store.counters(ADMIN_SCOPE)).storedJobs, 1);
    assertExact(store, 2);
    assert.equal((await store.cacheStats()).entries, 2);
  } finally {
    await store.close();
  }
});

test('with the cache off, a job\'s vector rows go with the job, and a late second answer leaves no row behind', async () => {
  const store = openSqliteStore(':memory:', { cache: { maxBytes: 0 } });
  try {
    await runJob(store, 'a', ['x', 'y']);
    assertExact(store, 2);
    // A later answer for documents already done (a duplicated chunk) is not stored.
    await store.admit(
      { id: 'b', owner: 'anonymous', model: 'm', status: 'running', createdAt: clock++, metadata: {}, options: OPTIONS, documents: ['z'] },
      { maxJobs: 100, now: clock++ },
    );
    const done = [{ index: 0, vector: vectorFor('z'), truncated: false }];
    await store.recordChunk('b', { done, failed: [] });
    await store.recordChunk('b', { done, failed: [] });
    assertExact(store, 3);
    assert.equal((await store.get(ADMIN_SCOPE, 'b'))!.completedItems, 1);
    assert.equal(await store.purge(ADMIN_SCOPE, 'a'), 'purged');
    assertExact(store, 1);
  } finally {
    await store.close();
  }
});

/** Bytes this thread has read through read/pread so far (page-cache hits included): SQLite's page reads. */
function threadReadBytes(): number {
  return Number(/rchar:\s+(\d+)/.exec(fs.readFileSync('/proc/thread-self/io', 'utf8'))![1]);
}

test('evicting cache entries whose vectors documents still hold reads none of those vectors (migration 10)', { skip: !fs.existsSync('/proc/thread-self/io') && 'needs /proc/thread-self/io (Linux)' }, async (t) => {
  const dir = tempDir(t);
  const DIMS = 768;
  const OLD = 3000;
  const NEW = 1000;
  const dense = (text: string): Float32Array => new Float32Array(DIMS).fill(text.length + text.charCodeAt(text.length - 1));
  const record = async (store: SqliteJobStore, id: string, texts: string[]): Promise<void> => {
    assert.ok((await store.admit({ id, owner: 'anonymous', model: 'm', status: 'running', createdAt: clock++, metadata: {}, options: OPTIONS, documents: texts }, { maxJobs: 100, now: clock++ })).admitted);
    for (let from = 0; from < texts.length; from += 100) {
      const pending = await store.pendingDocuments(id, from, from + 100);
      await store.recordChunk(id, { done: pending.map((p) => ({ index: p.index, vector: dense(p.text), truncated: false })), failed: [] });
    }
  };
  // Room for exactly the old job's vectors: each new one evicts an old entry, whose vector its document keeps.
  const cache = { maxBytes: OLD * DIMS * 4 };
  const first = openSqliteStore(dir, { cache });
  await record(first, 'old', Array.from({ length: OLD }, (_, i) => `old document ${i}`));
  await first.close();
  // Reopened: SQLite's page cache is empty, so a page the eviction looks at is read through the OS.
  const store = openSqliteStore(dir, { cache });
  try {
    const before = threadReadBytes();
    await record(store, 'new', Array.from({ length: NEW }, (_, i) => `new document ${i}`));
    const read = threadReadBytes() - before;
    assert.equal((await store.cacheStats()).entries, OLD);
    // Nothing was freed: the old documents still hold every vector, the cache holds the new ones.
    assertExact(store, OLD + NEW);
    // Reading an evicted entry's vector costs its 3 KiB at least (a 16 KiB page holds five); what
    // the new documents themselves read (their pages, the indexes, the entries evicted) is about 0.4 KiB each.
    const perEviction = read / NEW;
    assert.ok(perEviction < 1536, `the eviction of ${NEW} entries read ${read} bytes (${Math.round(perEviction)} per entry): it reads the vectors it keeps`);
  } finally {
    await store.close();
  }
});
