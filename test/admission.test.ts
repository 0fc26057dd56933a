/**
 * The embedded store's admission (docs/ARCHITECTURE.md, "Admission"): the documents go in
 * with one statement over a JSON array of the texts and one blob of their cache keys. Each
 * document must come out exactly as a per-document insert would have stored it (text bytes,
 * cache key, in-job duplicate flag), cache hits done at admission, a failure midway leaving
 * nothing, and migration 9's partial index on duplicates' keys serving the fills by key.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { NewJob } from '../src/jobs/model.js';
import { ADMIN_SCOPE } from '../src/jobs/model.js';
import { cacheKey, cacheKeyPrefix, cacheKeyStrings } from '../src/store/cacheKey.js';
import { migrate } from '../src/store/sqlite/migrations.js';
import { openSqliteStore, type SqliteJobStore } from '../src/store/sqlite/sqliteStore.js';

/**
 * A store in its own directory (or `dir`), closed and then its directory removed after the
 * test, in one hook: the store's checkpoint thread may write until it is closed.
 */
function testStore(t: TestContext, options: Parameters<typeof openSqliteStore>[1], dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-admission-'))): SqliteJobStore {
  const store = openSqliteStore(dir, options);
  t.after(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

const OPTIONS = { truncate: true };
const POLICY = { maxJobs: 100, now: 1 };
const CACHE = { cache: { maxBytes: 1 << 20 } };

/** Texts whose bytes a JSON round trip or a key per text could get wrong. */
const EDGE_TEXTS = [
  'plain',
  'nul \u0000 inside',
  'quotes " and \\ backslash',
  'tab\tnewline\ncarriage\r',
  '\u0001\u001f\u007f controls',
  '\u2028\u2029 separators',
  '\ud83d\ude00 emoji, é, 中文',
  // Lone surrogates: both are written as U+FFFD, so their cache keys are equal.
  'lone \ud800',
  'lone \udc00',
  'x'.repeat(20_000),
  'plain',
];

function newJob(id: string, documents: readonly string[], extra: Partial<NewJob> = {}): NewJob {
  return { id, owner: 'anonymous', model: 'm', status: 'running', createdAt: 1, metadata: {}, options: OPTIONS, documents, ...extra };
}

interface StoredDocument {
  idx: number;
  state: number;
  text: Buffer;
  key: Buffer | null;
  dup: number;
}

function storedDocuments(store: SqliteJobStore, id: string): StoredDocument[] {
  return store.database
    .prepare(`SELECT d.idx, d.state, CAST(d.text AS BLOB) AS text, d.cache_key AS key, d.dup FROM documents d JOIN jobs j ON j.seq = d.job_seq
              WHERE j.id = ? ORDER BY d.idx`)
    .all(id) as StoredDocument[];
}

/** What a per-document insert (a bound JS string) stores for each text: its bytes, and the string read back. */
function boundRoundTrip(texts: readonly string[]): { bytes: Buffer[]; read: string[] } {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (i INTEGER PRIMARY KEY, x TEXT)');
  const insert = db.prepare('INSERT INTO t (i, x) VALUES (?, ?)');
  texts.forEach((text, i) => insert.run(i, text));
  const rows = db.prepare('SELECT CAST(x AS BLOB) AS bytes, x AS read FROM t ORDER BY i').all() as { bytes: Buffer; read: string }[];
  db.close();
  return { bytes: rows.map((r) => r.bytes), read: rows.map((r) => r.read) };
}

function boundBytes(texts: readonly string[]): Buffer[] {
  return boundRoundTrip(texts).bytes;
}

test('cacheKeyStrings gives the bytes of cacheKey, one 32-character latin1 string per text', () => {
  const prefix = cacheKeyPrefix('m', OPTIONS);
  const strings = cacheKeyStrings(prefix, EDGE_TEXTS);
  assert.equal(strings.length, EDGE_TEXTS.length);
  strings.forEach((s, i) => {
    assert.equal(s.length, 32);
    assert.deepEqual(Buffer.from(s, 'latin1'), cacheKey(prefix, EDGE_TEXTS[i]!));
  });
});

test('admission stores each text, cache key and duplicate flag as a per-document insert would (cache on, cache off, generation)', async (t) => {
  const expectedText = boundBytes(EDGE_TEXTS);
  const prefix = cacheKeyPrefix('m', OPTIONS);
  const keys = EDGE_TEXTS.map((text) => cacheKey(prefix, text));
  // Duplicates by key: 'plain' twice, and the two lone surrogates (equal keys).
  const dupByKey = keys.map((key) => (keys.filter((k) => k.equals(key)).length > 1 ? 1 : 0));
  assert.deepEqual(dupByKey, [1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1]);

  const cached = testStore(t, CACHE);
  assert.ok((await cached.admit(newJob('on', EDGE_TEXTS), POLICY)).admitted);
  const on = storedDocuments(cached, 'on');
  assert.deepEqual(on.map((d) => d.idx), EDGE_TEXTS.map((_, i) => i));
  assert.deepEqual(on.map((d) => d.text), expectedText);
  assert.deepEqual(on.map((d) => d.key), keys);
  assert.deepEqual(on.map((d) => d.dup), dupByKey);
  assert.deepEqual(on.map((d) => d.state), EDGE_TEXTS.map(() => 0));
  // What the nodes are sent: one document per distinct key, with the text as stored.
  const pending = await cached.pendingDocuments('on', 0, EDGE_TEXTS.length);
  assert.deepEqual(pending.map((d) => d.index), [0, 1, 2, 3, 4, 5, 6, 7, 9]);
  const expectedRead = boundRoundTrip(EDGE_TEXTS).read;
  assert.deepEqual(pending.map((d) => d.text), pending.map((d) => expectedRead[d.index]));

  const uncached = testStore(t, { cache: { maxBytes: 0 } });
  assert.ok((await uncached.admit(newJob('off', EDGE_TEXTS), POLICY)).admitted);
  assert.ok((await uncached.admit(newJob('gen', EDGE_TEXTS.map((prompt) => JSON.stringify({ prompt })), { type: 'generate' }), POLICY)).admitted);
  const off = storedDocuments(uncached, 'off');
  assert.deepEqual(off.map((d) => d.text), expectedText);
  assert.deepEqual(off.map((d) => [d.key, d.dup, d.state]), EDGE_TEXTS.map(() => [null, 0, 0]));
  const gen = storedDocuments(uncached, 'gen');
  assert.deepEqual(gen.map((d) => d.text), boundBytes(EDGE_TEXTS.map((prompt) => JSON.stringify({ prompt }))));
  assert.deepEqual(gen.map((d) => [d.key, d.dup]), EDGE_TEXTS.map(() => [null, 0]));
});

test('cache hits among misses and in-job duplicates: hits done at admission in place, the rest pending, duplicates filled by key', async (t) => {
  const store = testStore(t, CACHE);
  assert.ok((await store.admit(newJob('first', ['x', 'y']), POLICY)).admitted);
  assert.ok(await store.recordChunk('first', { done: [{ index: 0, vector: new Float32Array([1, 0]), truncated: false }, { index: 1, vector: new Float32Array([0, 1]), truncated: true }], failed: [] }));

  const admitted = await store.admit(newJob('second', ['y', 'new', 'x', 'new', 'y', 'other']), POLICY);
  assert.ok(admitted.admitted);
  assert.equal(admitted.job.completedItems, 3);
  assert.equal(admitted.job.dimensions, 2);
  const docs = storedDocuments(store, 'second');
  assert.deepEqual(docs.map((d) => d.state), [1, 0, 1, 0, 1, 0]);
  assert.deepEqual(docs.map((d) => d.dup), [1, 1, 0, 1, 1, 0]);
  assert.deepEqual((await store.cacheStats()).hits, 3);
  // 'new' twice: sent once; its answer fills the other copy by key.
  assert.deepEqual((await store.pendingDocuments('second', 0, 6)).map((d) => d.index), [1, 5]);
  assert.ok(await store.recordChunk('second', { done: [{ index: 1, vector: new Float32Array([2, 2]), truncated: false }, { index: 5, vector: new Float32Array([3, 3]), truncated: false }], failed: [] }));
  const results = await store.readResults(ADMIN_SCOPE, 'second', 0, 6);
  assert.deepEqual(
    results.map((r) => (r.state === 'done' ? [...r.vector, r.truncated] : r.state)),
    [[0, 1, true], [2, 2, false], [1, 0, false], [2, 2, false], [0, 1, true], [3, 3, false]],
  );
});

test('an admission failing midway through its documents leaves no job, no document and no counter behind', async (t) => {
  const store = testStore(t, CACHE);
  const documents = Array.from({ length: 3000 }, (_, i) => `document ${i}`);
  store.database.exec(`CREATE TRIGGER fail_midway BEFORE INSERT ON documents WHEN new.idx = 2999 BEGIN SELECT RAISE(ABORT, 'failing on purpose'); END`);
  await assert.rejects(store.admit(newJob('broken', documents), POLICY));
  const count = (sql: string): number => (store.database.prepare(sql).get() as { n: number }).n;
  assert.equal(count('SELECT COUNT(*) AS n FROM jobs'), 0);
  assert.equal(count('SELECT COUNT(*) AS n FROM documents'), 0);
  assert.equal((await store.counters(ADMIN_SCOPE)).totalJobsCreated, 0);
  store.database.exec('DROP TRIGGER fail_midway');
  const admitted = await store.admit(newJob('whole', documents), POLICY);
  assert.ok(admitted.admitted);
  assert.equal(count('SELECT COUNT(*) AS n FROM documents'), 3000);
});

test('migration 9: a schema-8 file gets the partial index on duplicates, and its running job still fills duplicates by key', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-admission-'));
  const old = new Database(path.join(dir, 'sollol.db'));
  old.pragma('page_size = 16384');
  old.pragma('journal_mode = WAL');
  migrate(old, 8);
  const texts = ['same', 'other', 'same'];
  const prefix = cacheKeyPrefix('m', OPTIONS);
  const seq = old
    .prepare(`INSERT INTO jobs (id, owner, type, model, status, created_at, started_at, total_items, metadata, options)
              VALUES ('old-job', 'anonymous', 'embed', 'm', 'running', 1, 1, 3, '{}', ?)`)
    .run(JSON.stringify(OPTIONS)).lastInsertRowid;
  texts.forEach((text, i) => {
    old.prepare(`INSERT INTO documents (job_seq, idx, state, text, cache_key, dup) VALUES (?, ?, 0, ?, ?, ?)`).run(seq, i, text, cacheKey(prefix, text), text === 'same' ? 1 : 0);
  });
  old.close();

  const store = testStore(t, CACHE, dir);
  const indexes = (store.database.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
  assert.ok(indexes.includes('documents_dup_key'));
  assert.ok(!indexes.includes('documents_cache_key'));
  const plan = store.database
    .prepare(`EXPLAIN QUERY PLAN UPDATE documents SET state = 1 WHERE job_seq = ? AND cache_key = ? AND dup = 1 AND state = 0`)
    .all(seq, cacheKey(prefix, 'same')) as { detail: string }[];
  assert.match(plan.map((p) => p.detail).join('\n'), /documents_dup_key/);
  assert.deepEqual((await store.pendingDocuments('old-job', 0, 3)).map((d) => d.index), [0, 1]);
  assert.ok(await store.recordChunk('old-job', { done: [{ index: 0, vector: new Float32Array([5]), truncated: false }, { index: 1, vector: new Float32Array([6]), truncated: false }], failed: [] }));
  const results = await store.readResults(ADMIN_SCOPE, 'old-job', 0, 3);
  assert.deepEqual(results.map((r) => (r.state === 'done' ? [...r.vector] : r.state)), [[5], [6], [5]]);
});

test('a job cut into several insert slices (by count and by characters) keeps every index, text, key, duplicate flag and hit', async (t) => {
  const store = testStore(t, CACHE);
  const prefix = cacheKeyPrefix('m', OPTIONS);
  assert.ok((await store.admit(newJob('seed', ['cached text']), POLICY)).admitted);
  assert.ok(await store.recordChunk('seed', { done: [{ index: 0, vector: new Float32Array([7]), truncated: false }], failed: [] }));

  // 4,500 short documents: duplicates across slices, a cache hit in each slice.
  const many = Array.from({ length: 4500 }, (_, i) => (i % 1500 === 7 ? 'cached text' : i % 1000 === 3 ? 'repeated' : `document ${i}`));
  // 60 documents of 100,000 characters: more text than one slice holds.
  const long = Array.from({ length: 60 }, (_, i) => `${i} `.padEnd(100_000, String.fromCharCode(97 + (i % 26))));
  for (const [id, documents] of [['many', many], ['long', long]] as const) {
    const admitted = await store.admit(newJob(id, documents), POLICY);
    assert.ok(admitted.admitted);
    const docs = storedDocuments(store, id);
    assert.equal(docs.length, documents.length);
    assert.deepEqual(docs.map((d) => d.idx), documents.map((_, i) => i));
    assert.deepEqual(docs.map((d) => d.text.toString()), documents);
    assert.deepEqual(docs.map((d) => d.key), documents.map((text) => cacheKey(prefix, text)));
    assert.deepEqual(docs.map((d) => d.dup), documents.map((text) => (documents.indexOf(text) !== documents.lastIndexOf(text) ? 1 : 0)));
    assert.deepEqual(docs.map((d) => d.state), documents.map((text) => (text === 'cached text' ? 1 : 0)));
    assert.equal(admitted.job.completedItems, documents.filter((text) => text === 'cached text').length);
  }
});
