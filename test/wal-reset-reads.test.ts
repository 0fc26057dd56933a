/**
 * Reads are answered while the WAL is being reset. Once the write-ahead log is over its bound,
 * the store holds its next writes until the checkpointer has restarted the WAL (checkpointer.ts);
 * a status poll, a job listing or a results page must not queue behind those writes: they read
 * committed data only, and a RESTART checkpoint takes tens to hundreds of milliseconds under
 * load (measured during `npm run bench -- load`: 22-186 ms, about every 2,500 documents).
 *
 * The reset is held open deterministically: a second connection keeps a read transaction on an
 * old snapshot, so the checkpointer's RESTART waits for it (busy handler) until it is released.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { ADMIN_SCOPE, type NewJob } from '../src/jobs/model.js';
import { openSqliteStore } from '../src/store/sqlite/sqliteStore.js';
import { tempDir } from './helpers.js';

const DIMS = 256;

function job(n: number): NewJob {
  const documents = Array.from({ length: n }, (_, i) => `document ${i} ${randomUUID()}`);
  return { id: randomUUID(), owner: 'anonymous', model: 'm', status: 'running', createdAt: Date.now(), metadata: {}, options: { truncate: true }, documents };
}

const vector = (seed: number) => Float32Array.from({ length: DIMS }, (_, i) => Math.sin(seed + i));

/** A promise's settled state, readable synchronously. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  return { promise, settled: () => done };
}

test('status, get, list and results reads do not wait behind a WAL reset that holds the writes', async (t) => {
  const dir = tempDir(t);
  const store = openSqliteStore(dir, { cache: { maxBytes: 0 }, walLimitBytes: 256 * 1024, reserveBytes: 0 });
  t.after(() => store.close());
  const first = job(50);
  const admitted = await store.admit(first, { maxJobs: 100, now: Date.now() });
  assert.equal(admitted.admitted, true);
  await store.recordChunk(first.id, { done: [{ index: 0, vector: vector(0), truncated: false }], failed: [] });

  // A reader on an old snapshot: the checkpointer's RESTART cannot finish while it is open.
  const reader = new Database(path.join(dir, 'sollol.db'));
  t.after(() => reader.close());
  reader.exec('BEGIN');
  assert.equal((reader.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n, 1);

  // Write past the WAL bound (about 1 KiB of vector per document, 50 documents per write).
  let index = 1;
  const second = job(2000);
  assert.equal((await store.admit(second, { maxJobs: 100, now: Date.now() })).admitted, true);
  let footprint = await store.footprint();
  while (footprint.wal_bytes <= 256 * 1024) {
    const done = Array.from({ length: 50 }, () => ({ index, vector: vector(index++), truncated: false }));
    assert.equal(await store.recordChunk(second.id, { done, failed: [] }), true);
    footprint = await store.footprint();
  }

  // The write that crossed the bound started the reset; the next write waits for it.
  const held = track(store.recordChunk(second.id, { done: [{ index, vector: vector(index), truncated: false }], failed: [] }));

  assert.equal(await store.status(first.id), 'running');
  assert.equal((await store.get(ADMIN_SCOPE, second.id))?.completedItems, index - 1);
  assert.equal((await store.list(ADMIN_SCOPE, { limit: 10 })).total, 2);
  const results = await store.readResults(ADMIN_SCOPE, first.id, 0, 2);
  assert.deepEqual(results.map((r) => r.state), ['done', 'pending']);
  assert.equal(held.settled(), false, 'the held write is still waiting for the WAL reset');

  // Released, the reset completes and the held write lands.
  reader.exec('COMMIT');
  assert.equal(await held.promise, true);
  assert.equal((await store.get(ADMIN_SCOPE, second.id))?.completedItems, index);
});
