/**
 * The store's writer thread (src/store/sqlite/threadedStore.ts; docs/ARCHITECTURE.md, "The
 * store's writer thread"): reads answer on the main thread while a write waits for the write
 * lock, a write's StoreError keeps its class and code and health follows it, vectors are
 * copied (the caller's arrays stay usable), the writes of one turn cross in one message, and a thread that dies fails writes with
 * STORE_UNAVAILABLE and one logged line instead of hanging. A second connection holding the
 * write lock (BEGIN IMMEDIATE) stands in for a long write: nothing here depends on timing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { ADMIN_SCOPE, type NewJob } from '../src/jobs/model.js';
import { StoreError } from '../src/store/errors.js';
import { openThreadedStore, type ThreadedJobStore } from '../src/store/sqlite/threadedStore.js';
import { lockWrites, tempDir, tracked } from './helpers.js';

function makeJob(documents: readonly string[]): NewJob {
  return { id: randomUUID(), owner: 'alice', model: 'm', status: 'running', createdAt: Date.now(), metadata: {}, options: { truncate: true }, documents };
}

async function open(t: TestContext, logged: string[] = []): Promise<{ store: ThreadedJobStore; dir: string }> {
  const dir = tempDir(t);
  const { store } = await openThreadedStore({ dataDir: dir, cache: { maxBytes: 1 << 20 }, reserveBytes: 0, onError: (line) => logged.push(line) });
  t.after(() => store.close());
  return { store, dir };
}

test('reads answer while a write waits for the write lock; the write is seen once its promise resolved', async (t) => {
  const { store, dir } = await open(t);
  const admission = await store.admit(makeJob(['a', 'b']), { maxJobs: 10, now: Date.now() });
  assert.ok(admission.admitted);
  const id = admission.job.id;
  const lock = lockWrites(t, dir);
  const finishing = tracked(store.transition(id, 'completed', { at: Date.now(), expiresAt: Date.now() + 60_000 }));
  // In the event loop's thread the write would hold it (busy timeout) and be settled by now.
  assert.equal(await store.status(id), 'running');
  assert.equal((await store.get(ADMIN_SCOPE, id))?.status, 'running');
  assert.equal((await store.counters(ADMIN_SCOPE)).activeJobs, 1);
  assert.equal(finishing.settled(), false, 'the write is still waiting while the reads answered');
  lock.release();
  assert.equal((await finishing.promise)?.status, 'completed');
  assert.equal(await store.status(id), 'completed', 'a read after the write resolved sees it');
});

test("a write's StoreError crosses the thread with its class and code, and health follows it", async (t) => {
  const { store, dir } = await open(t);
  assert.deepEqual(store.health(), { writable: true });
  const lock = lockWrites(t, dir);
  const refused = await store.admit(makeJob(['a']), { maxJobs: 10, now: Date.now() }).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.ok(refused instanceof StoreError, String(refused));
  assert.equal(refused.code, 'STORE_UNAVAILABLE');
  assert.match(refused.message, /SQLITE_BUSY/);
  assert.equal(store.health().writable, false, 'health is the writer\'s, mirrored with the answer');
  lock.release();
  assert.ok((await store.admit(makeJob(['a']), { maxJobs: 10, now: Date.now() })).admitted);
  assert.deepEqual(store.health(), { writable: true });
});

test("recorded vectors are copied: the caller's arrays stay usable, the stored ones are exact", async (t) => {
  const { store } = await open(t);
  const admission = await store.admit(makeJob(['a', 'b', 'c']), { maxJobs: 10, now: Date.now() });
  assert.ok(admission.admitted);
  const all = Float32Array.from({ length: 12 }, (_, i) => Math.fround(i / 7 - 0.5));
  const vectors = [all.subarray(0, 4), all.subarray(4, 8), all.subarray(8, 12)];
  assert.equal(await store.recordChunk(admission.job.id, { done: vectors.map((vector, index) => ({ index, vector, truncated: index === 1 })), failed: [] }), true);
  assert.equal(all.length, 12, 'not detached');
  assert.equal(all[5], Math.fround(5 / 7 - 0.5));
  const items = await store.readResults(ADMIN_SCOPE, admission.job.id, 0, 3);
  assert.deepEqual(items.map((item) => (item.state === 'done' ? [Array.from(item.vector), item.truncated] : item.state)), vectors.map((v, i) => [Array.from(v), i === 1]));
  assert.equal((await store.get(ADMIN_SCOPE, admission.job.id))?.completedItems, 3);
});

test('a handed-over chunk crosses in its own buffer (detached, not copied) when its vectors fill it; else it is copied', async (t) => {
  const { store } = await open(t);
  const admission = await store.admit(makeJob(['a', 'b', 'c', 'd']), { maxJobs: 10, now: Date.now() });
  assert.ok(admission.admitted);
  const values = (from: number): number[] => Array.from({ length: 4 }, (_, i) => Math.fround((from + i) / 7 - 0.5));
  // Two vectors filling their buffer exactly, as the byte reader leaves a node's answer.
  const whole = Float32Array.from([...values(0), ...values(4)]);
  const filled = [whole.subarray(0, 4), whole.subarray(4, 8)];
  assert.equal(await store.recordChunk(admission.job.id, { done: filled.map((vector, index) => ({ index, vector, truncated: false })), failed: [], handOver: true }), true);
  assert.equal(whole.byteLength, 0, 'the buffer was transferred, not copied');
  // Handed over, but the vectors leave room in their buffer: a copy crosses, the caller's stays.
  const roomy = Float32Array.from([...values(8), ...values(12), 99]);
  const partial = [roomy.subarray(0, 4), roomy.subarray(4, 8)];
  assert.equal(await store.recordChunk(admission.job.id, { done: partial.map((vector, i) => ({ index: i + 2, vector, truncated: false })), failed: [], handOver: true }), true);
  assert.equal(roomy.length, 9, 'not detached');
  const items = await store.readResults(ADMIN_SCOPE, admission.job.id, 0, 4);
  assert.deepEqual(items.map((item) => (item.state === 'done' ? Array.from(item.vector) : item.state)), [values(0), values(4), values(8), values(12)]);
});

test("the writes of one turn cross to the thread in one message, and take effect in call order", async (t) => {
  const { store } = await open(t);
  const admission = await store.admit(makeJob(['a', 'b']), { maxJobs: 10, now: Date.now() });
  assert.ok(admission.admitted);
  const id = admission.job.id;
  const worker = store.worker;
  const post = worker.postMessage.bind(worker);
  let posted = 0;
  worker.postMessage = (...args: Parameters<typeof post>) => {
    posted++;
    post(...args);
  };
  t.after(() => {
    worker.postMessage = post;
  });
  // Made in one turn: a chunk's vectors, the job's end, then a chunk recorded too late.
  const first = store.recordChunk(id, { done: [{ index: 0, vector: Float32Array.of(1, 2), truncated: false }], failed: [] });
  const cancelled = store.transition(id, 'cancelled', { at: Date.now(), expiresAt: Date.now() + 60_000 });
  const late = store.recordChunk(id, { done: [{ index: 1, vector: Float32Array.of(3, 4), truncated: false }], failed: [] });
  assert.deepEqual([await first, (await cancelled)?.status, await late], [true, 'cancelled', false]);
  assert.equal(posted, 1, 'one message for the three calls');
  assert.equal((await store.get(ADMIN_SCOPE, id))?.completedItems, 1);
});

test('a writer thread that dies fails the write in flight and later writes with STORE_UNAVAILABLE, logs one line, and reads go on', async (t) => {
  const logged: string[] = [];
  const { store } = await open(t, logged);
  const admission = await store.admit(makeJob(['a']), { maxJobs: 10, now: Date.now() });
  assert.ok(admission.admitted);
  const exited = new Promise((resolve) => store.worker.once('exit', resolve));
  store.worker.postMessage('crash');
  // Posted after the crash: never answered by the thread.
  const inFlight = store.transition(admission.job.id, 'cancelled', { at: Date.now() });
  await assert.rejects(inFlight, (error: unknown) => error instanceof StoreError && error.code === 'STORE_UNAVAILABLE');
  await exited;
  await assert.rejects(store.admit(makeJob(['b']), { maxJobs: 10, now: Date.now() }), (error: unknown) => error instanceof StoreError && error.code === 'STORE_UNAVAILABLE');
  assert.equal(store.health().writable, false);
  assert.match(store.health().reason ?? '', /writer thread stopped/);
  assert.equal(logged.filter((line) => /writer thread stopped/.test(line)).length, 1, logged.join('\n'));
  assert.equal(await store.status(admission.job.id), 'running', 'reads are answered on this side');
  await store.close();
});

test('an unusable --data-dir is refused as without the thread', async () => {
  await assert.rejects(
    openThreadedStore({ dataDir: '/proc/sollol-cannot-be-here', cache: { maxBytes: 0 } }),
    (error: unknown) => (error as Error).name === 'DataDirError' || /--data-dir/.test((error as Error).message),
  );
});
