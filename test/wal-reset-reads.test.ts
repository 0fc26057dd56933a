/**
 * Reads are answered while the WAL is being reset. Once the write-ahead log is over its bound,
 * the store holds its next writes until the checkpointer has restarted the WAL (checkpointer.ts);
 * a status poll, a job listing or a results page must not queue behind those writes: they read
 * committed data only, and a RESTART checkpoint takes tens to hundreds of milliseconds under
 * load (measured during `npm run bench -- load`: 22-186 ms, about every 2,500 documents).
 *
 * The reset is held open deterministically: a second connection keeps a read transaction on an
 * old snapshot, so the checkpointer's RESTART waits for it (busy handler) until it is released.
 *
 * The job-control tables' writes (idempotency answers, webhooks, autobatch queues) take the
 * same path as the job writes: they wait for the reset in their turn. They ran beside it once,
 * as deferred transactions, and failed with SQLITE_BUSY while the RESTART held the write lock
 * (a 500 on a submit in `npm run bench -- moonshot`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { ADMIN_SCOPE, type NewJob } from '../src/jobs/model.js';
import { SqliteControlStore } from '../src/store/sqlite/controlStore.js';
import { openSqliteStore, type SqliteJobStore } from '../src/store/sqlite/sqliteStore.js';
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

/** Writes chunks of `second` until the WAL is over its bound; returns the next free index. */
async function writePastBound(store: SqliteJobStore, jobId: string, bound: number): Promise<number> {
  let index = 0;
  let footprint = await store.footprint();
  while (footprint.wal_bytes <= bound) {
    const done = Array.from({ length: 50 }, () => ({ index, vector: vector(index++), truncated: false }));
    assert.equal(await store.recordChunk(jobId, { done, failed: [] }), true);
    footprint = await store.footprint();
  }
  return index;
}

/** Resolves once another connection holds the write lock (the checkpointer's RESTART takes it first). */
async function writeLockHeld(file: string): Promise<void> {
  const probe = new Database(file, { timeout: 0 });
  try {
    for (;;) {
      try {
        probe.exec('BEGIN IMMEDIATE');
        probe.exec('ROLLBACK');
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_BUSY') return;
        throw error;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
  } finally {
    probe.close();
  }
}

test('job-control writes wait for a WAL reset in their turn, and do not fail while it holds the write lock', async (t) => {
  const dir = tempDir(t);
  const bound = 256 * 1024;
  const store = openSqliteStore(dir, { cache: { maxBytes: 0 }, walLimitBytes: bound, reserveBytes: 0 });
  t.after(() => store.close());
  const control = new SqliteControlStore(store);
  const file = path.join(dir, 'sollol.db');
  const big = job(2000);
  assert.equal((await store.admit(big, { maxJobs: 100, now: Date.now() })).admitted, true);
  const now = Date.now();
  await control.queueAutobatch({ owner: 'anonymous', target: 'm', documents: ['a', 'b'], metadata: null, queuedAt: now - 1 });

  const reader = new Database(file);
  t.after(() => reader.close());
  reader.exec('BEGIN');
  assert.equal((reader.prepare('SELECT COUNT(*) AS n FROM jobs').get() as { n: number }).n, 1);
  const index = await writePastBound(store, big.id, bound);
  // The RESTART the last write started holds the write lock while it waits for the reader.
  await writeLockHeld(file);

  const order: string[] = [];
  const settle = <T>(name: string, promise: Promise<T>) => track(promise.then((value) => (order.push(name), value)));
  const jobWrite = settle('job', store.recordChunk(big.id, { done: [{ index, vector: vector(index), truncated: false }], failed: [] }));
  const answer = { fingerprint: 'f', statusCode: 202, body: '{"job_id":"x"}', expiresAt: now + 60_000 };
  const kept = settle('keep', control.keepIdempotentAnswer('anonymous', 'k1', answer, now));
  const reserved = settle('reserve', control.reserveIdempotency('anonymous', 'k2', 'g', now, now + 60_000));
  const taken = settle('take', control.takeAutobatch('anonymous', 'm', now));
  await new Promise((resolve) => setImmediate(resolve));
  for (const [name, write] of [['job', jobWrite], ['keep', kept], ['reserve', reserved], ['take', taken]] as const) {
    assert.equal(write.settled(), false, `the ${name} write waits for the WAL reset`);
  }

  reader.exec('COMMIT');
  assert.equal(await jobWrite.promise, true);
  assert.deepEqual(await kept.promise, answer);
  assert.equal(await reserved.promise, 'reserved');
  assert.deepEqual((await taken.promise).map((e) => e.documents), [['a', 'b']]);
  assert.deepEqual(order, ['job', 'keep', 'reserve', 'take'], 'in the order they were called');
  assert.deepEqual(await control.idempotentAnswer('anonymous', 'k1', now), answer);
});
