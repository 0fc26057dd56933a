/**
 * One JobStore conformance suite, run against every adapter: the embedded SQLite store (in
 * the event loop's thread and with its writes on the writer thread, threadedStore.ts) and
 * the Redis store (a real Redis, its own key prefix per test, every key deleted after).
 * Then a few Redis-only checks: expiry of every key, raw float32 storage, memory per job.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test as nodeTest, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { ADMIN_SCOPE, type ChunkOutcome, type ItemResult, type JobRecord, type NewJob, type Scope } from '../src/jobs/model.js';
import { JOB_STATUSES, canTransition, type JobStatus } from '../src/jobs/state.js';
import { RedisJobStore } from '../src/store/redis/redisStore.js';
import { SqliteJobStore } from '../src/store/sqlite/sqliteStore.js';
import type { JobStore } from '../src/store/types.js';
import { vectorToBlob } from '../src/store/vectorBlob.js';
import { testClient, testRedis } from './redisServer.js';
import type { ControlStore, JobControl, Template } from '../src/store/control.js';
import { RedisControlStore } from '../src/store/redis/controlStore.js';
import { RedisKeys } from '../src/store/redis/keys.js';
import { SqliteControlStore } from '../src/store/sqlite/controlStore.js';
import { openThreadedStore } from '../src/store/sqlite/threadedStore.js';

interface Opened {
  readonly store: JobStore;
  /** A second instance on the same data, as another gateway or worker process would open it. */
  another(): Promise<JobStore>;
  /** What is still stored about job `id` (keys, index entries, rows); empty once it is all gone. */
  leftovers(id: string): Promise<string[]>;
}

interface Harness {
  readonly name: string;
  readonly skip?: string;
  /** Cases this adapter is known to fail, by test name: run and reported as TODO, not hidden. */
  readonly knownGaps?: Readonly<Record<string, string>>;
  open(t: TestContext, cacheMaxBytes?: number): Promise<Opened>;
}

const DIMS = 8;
const MODEL = 'test-model';
const CACHE_BYTES = 1 << 20;
const ALICE: Scope = { kind: 'owner', owner: 'alice' };
const BOB: Scope = { kind: 'owner', owner: 'bob' };

function makeJob(documents: readonly string[], extra: Partial<NewJob> = {}): NewJob {
  return { id: randomUUID(), owner: 'alice', model: MODEL, status: 'running', createdAt: Date.now(), metadata: {}, options: { truncate: true }, documents, ...extra };
}

function vector(seed: number, dims = DIMS): Float32Array {
  return Float32Array.from({ length: dims }, (_, i) => Math.sin(seed * 31 + i) * 10 ** ((i % 7) - 3));
}

const done = (index: number, seed = index, truncated = false) => ({ index, vector: vector(seed), truncated });
const failed = (index: number, code: 'INPUT_REJECTED' | 'BACKEND_TIMEOUT' = 'INPUT_REJECTED', error = `doc ${index} failed`) => ({ index, code, error });
const chunk = (d: ChunkOutcome['done'] = [], f: ChunkOutcome['failed'] = []): ChunkOutcome => ({ done: d, failed: f });
const policy = (maxJobs = 100, now = Date.now()) => ({ maxJobs, now });

async function admit(store: JobStore, job: NewJob, maxJobs = 100): Promise<JobRecord> {
  const admission = await store.admit(job, policy(maxJobs));
  assert.ok(admission.admitted, 'admitted');
  return admission.job;
}

async function finish(store: JobStore, id: string, to: 'completed' | 'failed' | 'cancelled' = 'completed', at = Date.now(), ttlMs = 60_000): Promise<JobRecord> {
  const job = await store.transition(id, to, { at, expiresAt: at + ttlMs });
  assert.ok(job, `transition to ${to}`);
  return job;
}

function assertSameVector(actual: ItemResult | undefined, expected: Float32Array, truncated = false): void {
  assert.equal(actual?.state, 'done', `item ${actual?.index} is done`);
  if (actual?.state !== 'done') return;
  assert.ok(vectorToBlob(actual.vector).equals(vectorToBlob(expected)), `item ${actual.index}: the same float32 bytes`);
  assert.equal(actual.truncated, truncated);
}

const states = (items: ItemResult[]): string[] => items.map((item) => `${item.index}:${item.state}`);

function conformance(h: Harness): void {
  const test = (name: string, fn: (t: TestContext) => Promise<void>) => nodeTest(name, { todo: h.knownGaps?.[name] }, fn);
  describe(`JobStore conformance: ${h.name}`, { skip: h.skip }, () => {
    test('admit stores the job and its documents; get, status and list see it', async (t) => {
      const { store } = await h.open(t);
      const job = makeJob(['a', 'b', 'c'], { metadata: { tag: 'x', n: 1 }, options: { truncate: false, dimensions: DIMS } });
      const admission = await store.admit(job, policy());
      assert.ok(admission.admitted);
      assert.equal(admission.evicted, 0);
      assert.deepEqual({ ...admission.job }, {
        id: job.id, owner: 'alice', type: 'embed', model: MODEL, status: 'running', createdAt: job.createdAt,
        startedAt: job.createdAt, completedAt: null, totalItems: 3, completedItems: 0, failedItems: 0, dimensions: null,
        metadata: { tag: 'x', n: 1 }, options: { truncate: false, dimensions: DIMS }, errors: [], retryOf: null,
      });
      assert.deepEqual(await store.get(ALICE, job.id), admission.job);
      assert.equal(await store.status(job.id), 'running');
      assert.equal(await store.status(randomUUID()), undefined);
      assert.deepEqual(states(await store.readResults(ALICE, job.id, 0, 10)), ['0:pending', '1:pending', '2:pending']);
      const pending = await admit(store, makeJob(['d'], { status: 'pending' }));
      assert.equal(pending.startedAt, null);
      assert.equal(pending.status, 'pending');
      assert.deepEqual((await store.list(ADMIN_SCOPE, { limit: 10 })).jobs.map((j) => j.id), [pending.id, job.id]);
    });

    test('recordChunk fails a vector of another length than the job\'s first with INVALID_VECTOR (in one outcome and across outcomes)', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b', 'c', 'd']));
      const short = (index: number) => ({ index, vector: vector(index, DIMS - 1), truncated: false });
      assert.equal(await store.recordChunk(job.id, chunk([done(0), short(1)])), true);
      assert.equal(await store.recordChunk(job.id, chunk([short(2), done(3)])), true);
      const after = await store.get(ADMIN_SCOPE, job.id);
      assert.equal(after?.dimensions, DIMS);
      assert.equal(after?.completedItems, 2);
      assert.equal(after?.failedItems, 2);
      const items = await store.readResults(ADMIN_SCOPE, job.id, 0, 4);
      assert.deepEqual(items.map((i) => (i.state === 'failed' ? i.code : i.state)), ['done', 'INVALID_VECTOR', 'INVALID_VECTOR', 'done']);
    });

    test('failureSummary counts failed documents by code and lists the first ones in order', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b', 'c', 'd', 'e']));
      assert.deepEqual(await store.failureSummary(job.id, 10), { counts: {}, first: [] });
      await store.recordChunk(job.id, chunk([done(0)], [failed(4, 'BACKEND_TIMEOUT'), failed(1), failed(3)]));
      const summary = await store.failureSummary(job.id, 2);
      assert.deepEqual({ ...summary.counts }, { INPUT_REJECTED: 2, BACKEND_TIMEOUT: 1 });
      assert.deepEqual(summary.first.map((f) => [f.index, f.code, f.error]), [[1, 'INPUT_REJECTED', 'doc 1 failed'], [3, 'INPUT_REJECTED', 'doc 3 failed']]);
      await store.transition(job.id, 'failed', { at: Date.now(), error: { code: 'BACKEND_UNAVAILABLE', error: 'gave up' } });
      const after = await store.failureSummary(job.id, 10);
      assert.deepEqual({ ...after.counts }, { INPUT_REJECTED: 2, BACKEND_TIMEOUT: 1, BACKEND_UNAVAILABLE: 1 });
      assert.deepEqual(await store.failureSummary(randomUUID(), 10), { counts: {}, first: [] });
    });

    test('admission evicts the oldest finished jobs, never an active one, and refuses when all are active', async (t) => {
      const { store, leftovers } = await h.open(t);
      const a = await admit(store, makeJob(['a']), 3);
      const b = await admit(store, makeJob(['b']), 3);
      const c = await admit(store, makeJob(['c']), 3);
      const now = Date.now();
      await finish(store, b.id, 'completed', now);
      await finish(store, a.id, 'failed', now + 5);
      const d = await store.admit(makeJob(['d']), policy(3));
      assert.ok(d.admitted);
      assert.equal(d.evicted, 1);
      assert.equal(await store.get(ADMIN_SCOPE, b.id), undefined, 'the oldest finished job (by completion) is evicted');
      assert.deepEqual(await leftovers(b.id), []);
      assert.ok(await store.get(ADMIN_SCOPE, a.id));
      const e = await store.admit(makeJob(['e']), policy(3));
      assert.ok(e.admitted && e.evicted === 1);
      assert.equal(await store.get(ADMIN_SCOPE, a.id), undefined);
      const created = (await store.counters(ADMIN_SCOPE)).totalJobsCreated;
      const refusedJob = makeJob(['f']);
      const refused = await store.admit(refusedJob, policy(3));
      assert.ok(!refused.admitted && refused.reason !== 'owner-active');
      assert.deepEqual([refused.storedJobs, refused.reason ?? 'max-jobs'], [3, 'max-jobs']);
      assert.equal(await store.get(ADMIN_SCOPE, refusedJob.id), undefined);
      assert.equal((await store.counters(ADMIN_SCOPE)).totalJobsCreated, created);
      for (const id of [c.id, d.admitted ? d.job.id : '', e.job.id]) assert.equal(await store.status(id), 'running', 'active jobs are never evicted');
    });

    test('admission sweeps jobs past their TTL first', async (t) => {
      const { store, leftovers } = await h.open(t);
      const old = await admit(store, makeJob(['a']));
      await store.recordChunk(old.id, chunk([done(0)]));
      const now = Date.now();
      await finish(store, old.id, 'completed', now, 60_000);
      const next = await store.admit(makeJob(['b']), policy(100, now + 120_000));
      assert.ok(next.admitted);
      assert.equal(next.evicted, 1);
      assert.equal(await store.get(ADMIN_SCOPE, old.id), undefined);
      assert.deepEqual(await leftovers(old.id), []);
    });

    test('a per-owner cap on active jobs refuses that owner only, in the same atomic step', async (t) => {
      const { store } = await h.open(t);
      const capped = (now = Date.now()) => ({ maxJobs: 100, now, maxActivePerOwner: 2 });
      const a = await store.admit(makeJob(['a']), capped());
      const b = await store.admit(makeJob(['b'], { status: 'pending' }), capped());
      assert.ok(a.admitted && b.admitted);
      assert.deepEqual(await store.admit(makeJob(['c']), capped()), { admitted: false, reason: 'owner-active', activeJobs: 2 });
      assert.ok((await store.admit(makeJob(['c'], { owner: 'bob' }), capped())).admitted, 'another owner is not capped');
      await finish(store, a.job.id);
      const retry = { id: randomUUID(), owner: 'alice', status: 'running' as const, createdAt: Date.now() };
      assert.ok((await store.admit(makeJob(['d']), capped())).admitted, 'a finished job frees a slot');
      assert.deepEqual(await store.admitRetry(ALICE, a.job.id, retry, capped()), { admitted: false, reason: 'owner-active', activeJobs: 2 });
      assert.equal((await store.counters(ALICE)).totalJobsCreated, 3);
      const uncapped = await store.admitRetry(ALICE, a.job.id, retry, { maxJobs: 100, now: Date.now(), maxActivePerOwner: 0 });
      assert.ok(typeof uncapped === 'object' && uncapped.admitted, 'maxActivePerOwner 0: no cap');
    });

    test('reads and writes are scoped: the owner and an admin see a job, another owner does not', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b']));
      await store.recordChunk(job.id, chunk([done(0)]));
      assert.equal(await store.get(BOB, job.id), undefined);
      assert.deepEqual(await store.list(BOB, { limit: 10 }), { jobs: [], total: 0 });
      assert.deepEqual(await store.readResults(BOB, job.id, 0, 10), []);
      assert.equal((await store.counters(BOB)).storedJobs, 0);
      assert.equal((await store.counters(BOB)).activeJobs, 0);
      for (const scope of [ALICE, ADMIN_SCOPE]) {
        assert.equal((await store.get(scope, job.id))?.id, job.id);
        assert.equal((await store.list(scope, { limit: 10 })).total, 1);
        assert.equal((await store.readResults(scope, job.id, 0, 10)).length, 2);
        assert.equal((await store.counters(scope)).activeJobs, 1);
      }
      await finish(store, job.id);
      assert.equal(await store.purge(BOB, job.id), 'not-found');
      assert.equal(await store.admitRetry(BOB, job.id, { id: randomUUID(), owner: 'bob', status: 'running', createdAt: Date.now() }, policy()), 'not-found');
      assert.ok(await store.get(ALICE, job.id), 'untouched by the other owner');
      assert.equal(await store.purge(ADMIN_SCOPE, job.id), 'purged');
    });

    test('list is newest first (ties in admission order) with a total, filtered by status and owner', async (t) => {
      const { store } = await h.open(t);
      const t0 = Date.now();
      const j = [
        await admit(store, makeJob(['1'], { createdAt: t0 })),
        await admit(store, makeJob(['2'], { createdAt: t0 + 10, owner: 'bob' })),
        await admit(store, makeJob(['3'], { createdAt: t0 + 10 })),
        await admit(store, makeJob(['4'], { createdAt: t0 + 20, status: 'pending' })),
        await admit(store, makeJob(['5'], { createdAt: t0 + 5 })),
      ] as const;
      await finish(store, j[2].id);
      await finish(store, j[1].id);
      const ids = (jobs: JobRecord[]) => jobs.map((job) => job.id);
      const all = await store.list(ADMIN_SCOPE, { limit: 3 });
      assert.equal(all.total, 5);
      assert.deepEqual(ids(all.jobs), [j[3].id, j[2].id, j[1].id]);
      assert.deepEqual(ids((await store.list(ADMIN_SCOPE, { limit: 10 })).jobs), [j[3].id, j[2].id, j[1].id, j[4].id, j[0].id]);
      const completed = await store.list(ADMIN_SCOPE, { limit: 10, status: 'completed' });
      assert.deepEqual({ ids: ids(completed.jobs), total: completed.total }, { ids: [j[2].id, j[1].id], total: 2 });
      const alice = await store.list(ALICE, { limit: 2 });
      assert.deepEqual({ ids: ids(alice.jobs), total: alice.total }, { ids: [j[3].id, j[2].id], total: 4 });
      const aliceRunning = await store.list(ALICE, { limit: 10, status: 'running' });
      assert.deepEqual({ ids: ids(aliceRunning.jobs), total: aliceRunning.total }, { ids: [j[4].id, j[0].id], total: 2 });
      assert.deepEqual(await store.list(BOB, { limit: 10, status: 'running' }), { jobs: [], total: 0 });
      assert.equal((await store.list(ADMIN_SCOPE, { limit: 0 })).total, 5);
    });

    test('every transition the state machine allows is applied, every other one refused; terminal states are final', async (t) => {
      const { store } = await h.open(t);
      const inState = async (status: JobStatus): Promise<string> => {
        const job = await admit(store, makeJob(['x'], { status: status === 'pending' || status === 'scheduled' ? status : 'running' }));
        if (status !== 'pending' && status !== 'running' && status !== 'scheduled') await finish(store, job.id, status);
        return job.id;
      };
      for (const from of JOB_STATUSES) {
        for (const to of JOB_STATUSES) {
          const id = await inState(from);
          const at = Date.now() + 1000;
          const result = await store.transition(id, to, { at, expiresAt: at + 60_000 });
          assert.equal(result !== undefined, canTransition(from, to), `${from} -> ${to}`);
          assert.equal(await store.status(id), result ? to : from, `${from} -> ${to}: status after`);
          if (!result) continue;
          if (to === 'running') assert.equal(result.startedAt, at);
          if (to === 'completed' || to === 'failed' || to === 'cancelled') assert.equal(result.completedAt, at);
        }
      }
      assert.equal(await store.transition(randomUUID(), 'cancelled', { at: Date.now() }), undefined, 'unknown job');
    });

    test('terminal transitions record the time and the error and count once', async (t) => {
      const { store } = await h.open(t);
      const before = await store.counters(ADMIN_SCOPE);
      const a = await admit(store, makeJob(['a']));
      const error = { code: 'CANCELLED' as const, error: 'Job cancelled by request' };
      const at = Date.now();
      const cancelled = await store.transition(a.id, 'cancelled', { at, expiresAt: at + 1000, error });
      assert.deepEqual(cancelled?.errors, [error]);
      assert.equal(cancelled?.startedAt, a.startedAt);
      assert.equal(await store.transition(a.id, 'cancelled', { at, error }), undefined, 'cancelled is final');
      assert.deepEqual((await store.get(ALICE, a.id))?.errors, [error]);
      const b = await admit(store, makeJob(['b']));
      await finish(store, b.id, 'completed');
      const after = await store.counters(ADMIN_SCOPE);
      assert.equal(after.totalJobsCancelled - before.totalJobsCancelled, 1);
      assert.equal(after.totalJobsCompleted - before.totalJobsCompleted, 1);
      assert.equal(after.totalJobsFailed - before.totalJobsFailed, 0);
      assert.equal(after.totalJobsCreated - before.totalJobsCreated, 2);
    });

    test('entering failed marks the still-pending documents failed with the error code', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b', 'c', 'd']));
      await store.recordChunk(job.id, chunk([done(0)], [failed(1, 'BACKEND_TIMEOUT', 'too long')]));
      const error = { code: 'BACKEND_UNAVAILABLE' as const, error: 'no backend' };
      const result = await store.transition(job.id, 'failed', { at: Date.now(), expiresAt: Date.now() + 60_000, error });
      assert.equal(result?.failedItems, 3);
      assert.equal(result?.completedItems, 1);
      assert.deepEqual(result?.errors, [error]);
      const items = await store.readResults(ALICE, job.id, 0, 10);
      assertSameVector(items[0], vector(0));
      assert.deepEqual(items.slice(1), [
        { index: 1, state: 'failed', code: 'BACKEND_TIMEOUT', error: 'too long' },
        { index: 2, state: 'failed', code: 'BACKEND_UNAVAILABLE', error: 'no backend' },
        { index: 3, state: 'failed', code: 'BACKEND_UNAVAILABLE', error: 'no backend' },
      ]);
    });

    test('a cancel racing a completion, from two processes, has exactly one winner', async (t) => {
      const { store, another } = await h.open(t);
      const other = await another();
      const before = await store.counters(ADMIN_SCOPE);
      for (let round = 0; round < 10; round++) {
        const job = await admit(store, makeJob(['a']));
        const at = Date.now();
        const [cancel, complete] = await Promise.all([
          store.transition(job.id, 'cancelled', { at, expiresAt: at + 60_000 }),
          other.transition(job.id, 'completed', { at, expiresAt: at + 60_000 }),
        ]);
        assert.equal([cancel, complete].filter(Boolean).length, 1, `round ${round}: one winner`);
        assert.equal(await store.status(job.id), cancel ? 'cancelled' : 'completed');
      }
      const after = await other.counters(ADMIN_SCOPE);
      assert.equal(after.totalJobsCancelled + after.totalJobsCompleted - before.totalJobsCancelled - before.totalJobsCompleted, 10);
    });

    test('recordChunk writes only while the job is running; results arriving after a cancel are dropped', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b', 'c'], { status: 'pending' }));
      assert.equal(await store.recordChunk(job.id, chunk([done(0)])), false, 'pending');
      assert.equal((await store.get(ALICE, job.id))?.completedItems, 0);
      await store.transition(job.id, 'running', { at: Date.now() });
      assert.equal(await store.recordChunk(job.id, chunk([done(0)])), true);
      await store.transition(job.id, 'cancelled', { at: Date.now(), expiresAt: Date.now() + 60_000 });
      assert.equal(await store.recordChunk(job.id, chunk([done(1)], [failed(2)])), false, 'cancelled');
      const after = await store.get(ALICE, job.id);
      assert.deepEqual([after?.completedItems, after?.failedItems], [1, 0]);
      assert.deepEqual(states(await store.readResults(ALICE, job.id, 0, 10)), ['0:done', '1:pending', '2:pending']);
      assert.equal(await store.recordChunk(randomUUID(), chunk([done(0)])), false, 'unknown job');
    });

    test('recordChunk counts progress once per document and keeps vectors exact to the float32 bit', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b', 'c', 'd']));
      const special = Float32Array.from([0, -0, 1.5, -3.4028234663852886e38, 1.401298464324817e-45, Math.PI, NaN, -Infinity]);
      assert.equal(await store.recordChunk(job.id, chunk([{ index: 0, vector: special, truncated: true }, done(1)])), true);
      await store.recordChunk(job.id, chunk([done(1, 99)], [failed(2)]));
      await store.recordChunk(job.id, chunk([], [failed(2)]));
      const mid = await store.get(ALICE, job.id);
      assert.deepEqual([mid?.completedItems, mid?.failedItems, mid?.dimensions], [2, 1, DIMS]);
      const items = await store.readResults(ALICE, job.id, 0, 10);
      assertSameVector(items[0], special, true);
      assertSameVector(items[1], vector(1), false);
      assert.deepEqual(items.slice(2), [{ index: 2, state: 'failed', code: 'INPUT_REJECTED', error: 'doc 2 failed' }, { index: 3, state: 'pending' }]);
    });

    test('pendingDocuments returns a range of pending documents in order, only while running', async (t) => {
      const { store } = await h.open(t);
      const texts = ['zero', 'one', 'two', 'three', 'four', 'fünf ✓'];
      const job = await admit(store, makeJob(texts, { status: 'pending' }));
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 6), [], 'not running yet');
      await store.transition(job.id, 'running', { at: Date.now() });
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 4), texts.slice(0, 4).map((text, index) => ({ index, text })));
      await store.recordChunk(job.id, chunk([done(1)], [failed(2)]));
      assert.deepEqual((await store.pendingDocuments(job.id, 0, 100)).map((d) => d.index), [0, 3, 4, 5]);
      assert.deepEqual(await store.pendingDocuments(job.id, 5, 6), [{ index: 5, text: 'fünf ✓' }]);
      assert.deepEqual(await store.pendingDocuments(job.id, 6, 10), []);
      assert.deepEqual(await store.pendingDocuments(randomUUID(), 0, 10), []);
      await finish(store, job.id, 'cancelled');
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 6), []);
    });

    test('identical texts in one job are sent once and filled when the first is recorded', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b', 'a', 'c', 'a', 'b']));
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 6), [{ index: 0, text: 'a' }, { index: 1, text: 'b' }, { index: 3, text: 'c' }]);
      await store.recordChunk(job.id, chunk([done(0, 7, true)], [failed(1)]));
      const mid = await store.get(ALICE, job.id);
      assert.deepEqual([mid?.completedItems, mid?.failedItems], [3, 2]);
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 6), [{ index: 3, text: 'c' }]);
      const items = await store.readResults(ALICE, job.id, 0, 6);
      for (const i of [0, 2, 4]) assertSameVector(items[i], vector(7), true);
      assert.deepEqual([items[1]?.state, items[5]?.state], ['failed', 'failed']);
    });

    test('the content cache answers later jobs at admission and in pendingDocuments, keyed by model and options', async (t) => {
      const { store } = await h.open(t);
      const first = await admit(store, makeJob(['a', 'b']));
      assert.equal((await store.pendingDocuments(first.id, 0, 2)).length, 2);
      await store.recordChunk(first.id, chunk([done(0, 10, true), done(1, 11)]));
      await finish(store, first.id);
      let stats = await store.cacheStats();
      assert.deepEqual(stats, { enabled: true, max_bytes: CACHE_BYTES, entries: 2, bytes: 2 * DIMS * 4, hits: 0, misses: 2 });

      const second = await admit(store, makeJob(['b', 'c', 'a']));
      assert.deepEqual([second.completedItems, second.dimensions], [2, DIMS], 'answered from the cache at admission');
      const items = await store.readResults(ALICE, second.id, 0, 3);
      assertSameVector(items[0], vector(11));
      assertSameVector(items[2], vector(10), true);
      assert.deepEqual(await store.pendingDocuments(second.id, 0, 3), [{ index: 1, text: 'c' }]);
      stats = await store.cacheStats();
      assert.deepEqual([stats.hits, stats.misses], [2, 3]);

      const third = await admit(store, makeJob(['d', 'e']));
      const fourth = await admit(store, makeJob(['e']));
      await store.recordChunk(third.id, chunk([done(1, 12)]));
      assert.deepEqual(await store.pendingDocuments(fourth.id, 0, 1), [], 'filled from the cache just before sending');
      assertSameVector((await store.readResults(ALICE, fourth.id, 0, 1))[0], vector(12));
      assert.equal((await store.get(ALICE, fourth.id))?.completedItems, 1);
      assert.equal((await store.cacheStats()).hits, 3);

      const otherOptions = await admit(store, makeJob(['a'], { options: { truncate: false } }));
      const otherModel = await admit(store, makeJob(['a'], { model: 'other-model' }));
      const sameModel = await admit(store, makeJob(['a'], { model: `${MODEL}:latest` }));
      assert.deepEqual([otherOptions.completedItems, otherModel.completedItems, sameModel.completedItems], [0, 0, 1]);
    });

    test('with the cache off nothing is cached and every document is sent', async (t) => {
      const { store } = await h.open(t, 0);
      const first = await admit(store, makeJob(['a', 'a']));
      assert.deepEqual((await store.pendingDocuments(first.id, 0, 2)).map((d) => d.index), [0, 1]);
      await store.recordChunk(first.id, chunk([done(0)]));
      assert.equal((await store.get(ALICE, first.id))?.completedItems, 1);
      const second = await admit(store, makeJob(['a']));
      assert.equal(second.completedItems, 0);
      assert.deepEqual(await store.cacheStats(), { enabled: false, max_bytes: 0, entries: 0, bytes: 0, hits: 0, misses: 0 });
    });

    test('the cache is bounded in bytes and evicts the least recently used vectors', async (t) => {
      const { store } = await h.open(t, 3 * DIMS * 4);
      const job = await admit(store, makeJob(['a', 'b', 'c', 'd', 'e']));
      for (let i = 0; i < 5; i++) {
        await store.recordChunk(job.id, chunk([done(i)]));
        await new Promise((resolve) => setTimeout(resolve, 3));
      }
      const stats = await store.cacheStats();
      assert.deepEqual([stats.entries, stats.bytes], [3, 3 * DIMS * 4]);
      const again = await admit(store, makeJob(['a', 'b', 'c', 'd', 'e']));
      assert.deepEqual(states(await store.readResults(ALICE, again.id, 0, 5)), ['0:pending', '1:pending', '2:done', '3:done', '4:done']);
    });

    test('readResults pages through the documents in order', async (t) => {
      const { store } = await h.open(t);
      const job = await admit(store, makeJob(Array.from({ length: 10 }, (_, i) => `doc ${i}`)));
      await store.recordChunk(job.id, chunk([0, 2, 4, 6, 8, 9].map((i) => done(i)), [failed(5)]));
      await finish(store, job.id);
      const pages = [await store.readResults(ALICE, job.id, 0, 4), await store.readResults(ALICE, job.id, 4, 4), await store.readResults(ALICE, job.id, 8, 4)];
      assert.deepEqual(pages.map((p) => p.map((item) => item.index)), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
      assert.deepEqual(states(pages.flat()), ['0:done', '1:pending', '2:done', '3:pending', '4:done', '5:failed', '6:done', '7:pending', '8:done', '9:done']);
      for (const i of [0, 2, 4, 6, 8, 9]) assertSameVector(pages.flat()[i], vector(i));
      assert.deepEqual(await store.readResults(ALICE, job.id, 10, 5), []);
      assert.deepEqual(await store.readResults(ALICE, job.id, 3, 0), []);
      assert.deepEqual(await store.readResults(ALICE, randomUUID(), 0, 5), []);
    });

    test('purge deletes a finished job and its documents now, and refuses an active one', async (t) => {
      const { store, leftovers } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b']));
      await store.recordChunk(job.id, chunk([done(0)]));
      assert.equal(await store.purge(ALICE, job.id), 'active');
      assert.equal(await store.status(job.id), 'running');
      await finish(store, job.id);
      assert.equal(await store.purge(BOB, job.id), 'not-found');
      assert.equal(await store.purge(ALICE, job.id), 'purged');
      assert.equal(await store.get(ADMIN_SCOPE, job.id), undefined);
      assert.deepEqual(await store.readResults(ADMIN_SCOPE, job.id, 0, 5), []);
      assert.deepEqual(await store.list(ADMIN_SCOPE, { limit: 5 }), { jobs: [], total: 0 });
      assert.deepEqual(await leftovers(job.id), []);
      assert.equal(await store.purge(ALICE, job.id), 'not-found');
      assert.equal(await store.purge(ALICE, randomUUID()), 'not-found');
    });

    test('admitRetry keeps the succeeded vectors and makes every other document pending again', async (t) => {
      const { store } = await h.open(t);
      const texts = ['a', 'b', 'c', 'd', 'e'];
      const old = await admit(store, makeJob(texts, { metadata: { batch: 7 }, options: { truncate: true, dimensions: DIMS } }));
      const retryOf = (id: string) => ({ id, owner: 'alice', status: 'running' as const, createdAt: Date.now() });
      assert.equal(await store.admitRetry(ALICE, old.id, retryOf(randomUUID()), policy()), 'active');
      assert.equal(await store.admitRetry(ALICE, randomUUID(), retryOf(randomUUID()), policy()), 'not-found');
      await store.recordChunk(old.id, chunk([done(0, 0, true), done(3)], [failed(1)]));
      await finish(store, old.id, 'cancelled');
      const oldResults = await store.readResults(ALICE, old.id, 0, 5);
      const oldRecord = await store.get(ALICE, old.id);

      const outcome = await store.admitRetry(ALICE, old.id, retryOf(randomUUID()), policy());
      assert.ok(typeof outcome === 'object' && outcome.admitted);
      const retry = outcome.job;
      assert.deepEqual(
        [retry.retryOf, retry.status, retry.totalItems, retry.completedItems, retry.failedItems, retry.dimensions, retry.model, retry.errors],
        [old.id, 'running', 5, 2, 0, DIMS, MODEL, []],
      );
      assert.deepEqual([retry.metadata, retry.options], [{ batch: 7 }, { truncate: true, dimensions: DIMS }]);
      const items = await store.readResults(ALICE, retry.id, 0, 5);
      assertSameVector(items[0], vector(0), true);
      assertSameVector(items[3], vector(3));
      assert.deepEqual(states(items), ['0:done', '1:pending', '2:pending', '3:done', '4:pending']);
      assert.deepEqual(await store.pendingDocuments(retry.id, 0, 5), [{ index: 1, text: 'b' }, { index: 2, text: 'c' }, { index: 4, text: 'e' }]);
      assert.deepEqual(await store.get(ALICE, old.id), oldRecord, 'the old job is untouched');
      assert.deepEqual(await store.readResults(ALICE, old.id, 0, 5), oldResults);

      await store.recordChunk(retry.id, chunk([done(1), done(2), done(4)]));
      assert.equal((await store.get(ALICE, retry.id))?.completedItems, 5);
    });

    test('admitRetry of a job that failed as a whole re-sends its failed documents; a full store refuses it', async (t) => {
      const { store } = await h.open(t, 0);
      const old = await admit(store, makeJob(['a', 'b', 'c']));
      await store.recordChunk(old.id, chunk([done(0)]));
      const error = { code: 'BACKEND_UNAVAILABLE' as const, error: 'down' };
      await store.transition(old.id, 'failed', { at: Date.now(), expiresAt: Date.now() + 60_000, error });
      const outcome = await store.admitRetry(ALICE, old.id, { id: randomUUID(), owner: 'alice', status: 'pending', createdAt: Date.now() }, policy());
      assert.ok(typeof outcome === 'object' && outcome.admitted);
      assert.deepEqual([outcome.job.status, outcome.job.startedAt, outcome.job.completedItems], ['pending', null, 1]);
      await store.transition(outcome.job.id, 'running', { at: Date.now() });
      assert.deepEqual(await store.pendingDocuments(outcome.job.id, 0, 3), [{ index: 1, text: 'b' }, { index: 2, text: 'c' }]);

      // Two active jobs and max_jobs 2: the retry is refused (evicting finished jobs does not make room).
      await admit(store, makeJob(['x']));
      const refused = await store.admitRetry(ALICE, old.id, { id: randomUUID(), owner: 'alice', status: 'running', createdAt: Date.now() }, policy(2));
      assert.ok(typeof refused === 'object' && !refused.admitted);
    });

    test(RETRY_OF_EVICTED, async (t) => {
      const { store } = await h.open(t);
      const old = await admit(store, makeJob(['a', 'b']), 2);
      await store.recordChunk(old.id, chunk([done(0)]));
      await finish(store, old.id, 'cancelled');
      await admit(store, makeJob(['x']), 2);
      const outcome = await store.admitRetry(ALICE, old.id, { id: randomUUID(), owner: 'alice', status: 'running', createdAt: Date.now() }, policy(2));
      assert.ok(typeof outcome === 'object' && outcome.admitted);
      assert.equal(outcome.evicted, 1, 'the old job made room');
      assert.deepEqual([outcome.job?.retryOf, outcome.job?.completedItems, outcome.job?.totalItems], [old.id, 1, 2]);
      assertSameVector((await store.readResults(ALICE, outcome.job.id, 0, 2))[0], vector(0));
      assert.deepEqual(await store.pendingDocuments(outcome.job.id, 0, 2), [{ index: 1, text: 'b' }]);
    });

    test('sweepExpired deletes the finished jobs past their TTL and nothing else', async (t) => {
      const { store, leftovers } = await h.open(t);
      const now = Date.now();
      const a = await admit(store, makeJob(['a']));
      const b = await admit(store, makeJob(['b']));
      const c = await admit(store, makeJob(['c']));
      await store.recordChunk(a.id, chunk([done(0)]));
      await finish(store, a.id, 'completed', now, 1000);
      await finish(store, b.id, 'cancelled', now, 60_000);
      assert.deepEqual(await store.sweepExpired(now + 2000), [a.id]);
      assert.deepEqual(await store.sweepExpired(now + 2000), []);
      assert.deepEqual(await leftovers(a.id), []);
      assert.equal(await store.status(b.id), 'cancelled');
      assert.equal(await store.status(c.id), 'running');
    });

    test('a finished job is gone once its TTL has passed: every key, row and index entry', async (t) => {
      const { store, leftovers } = await h.open(t);
      const job = await admit(store, makeJob(['a', 'b', 'c']));
      await store.recordChunk(job.id, chunk([done(0), done(1)], [failed(2)]));
      await finish(store, job.id, 'completed', Date.now(), 300);
      assert.ok((await leftovers(job.id)).length > 0);
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.deepEqual(await store.sweepExpired(Date.now()), [job.id]);
      assert.deepEqual(await leftovers(job.id), []);
      assert.equal(await store.get(ADMIN_SCOPE, job.id), undefined);
      assert.equal((await store.counters(ADMIN_SCOPE)).storedJobs, 0);
    });

    test('unfinishedJobs lists the pending and running jobs in creation order', async (t) => {
      const { store } = await h.open(t);
      const t0 = Date.now();
      const a = await admit(store, makeJob(['a'], { createdAt: t0 + 5 }));
      const b = await admit(store, makeJob(['b'], { createdAt: t0, status: 'pending', owner: 'bob' }));
      const c = await admit(store, makeJob(['c'], { createdAt: t0 + 5 }));
      const d = await admit(store, makeJob(['d'], { createdAt: t0 + 1 }));
      await finish(store, d.id);
      assert.deepEqual((await store.unfinishedJobs()).map((j) => [j.id, j.status]), [[b.id, 'pending'], [a.id, 'running'], [c.id, 'running']]);
    });

    test('counters: totals for the whole store, job counts per scope', async (t) => {
      const { store } = await h.open(t);
      await admit(store, makeJob(['a'], { status: 'pending' }));
      await admit(store, makeJob(['b']));
      const done1 = await admit(store, makeJob(['c'], { owner: 'bob' }));
      await finish(store, done1.id, 'completed');
      const failed1 = await admit(store, makeJob(['d']));
      await finish(store, failed1.id, 'failed');
      assert.deepEqual(await store.counters(ADMIN_SCOPE), {
        totalJobsCreated: 4, totalJobsCompleted: 1, totalJobsFailed: 1, totalJobsCancelled: 0, activeJobs: 1, pendingJobs: 1, storedJobs: 4,
      });
      assert.deepEqual(await store.counters(BOB), {
        totalJobsCreated: 1, totalJobsCompleted: 1, totalJobsFailed: 0, totalJobsCancelled: 0, activeJobs: 0, pendingJobs: 0, storedJobs: 1,
      }, "an owner's totals are its own");
      assert.equal(await store.purge(BOB, done1.id), 'purged');
      assert.equal((await store.counters(BOB)).totalJobsCompleted, 1, 'totals outlive the jobs');
      assert.equal((await store.counters(ADMIN_SCOPE)).storedJobs, 3);
    });

    test('another process on the same store sees and changes the same jobs', async (t) => {
      const { store, another } = await h.open(t);
      const other = await another();
      const job = await admit(store, makeJob(['a', 'b']));
      assert.deepEqual(await other.pendingDocuments(job.id, 0, 2), [{ index: 0, text: 'a' }, { index: 1, text: 'b' }]);
      await other.recordChunk(job.id, chunk([done(0), done(1)]));
      assert.equal((await store.get(ALICE, job.id))?.completedItems, 2);
      await other.transition(job.id, 'completed', { at: Date.now(), expiresAt: Date.now() + 60_000 });
      assert.equal(await store.status(job.id), 'completed');
      assert.equal((await store.list(ALICE, { limit: 5, status: 'completed' })).total, 1);
      assertSameVector((await store.readResults(ALICE, job.id, 0, 2))[1], vector(1));
    });

    test('generation jobs: type kept, results stored as text once per item, failures, retry keeps results, never the cache', async (t) => {
      const { store, another } = await h.open(t, CACHE_BYTES);
      const requests = ['{"prompt":"same"}', '{"prompt":"same"}', '{"prompt":"ünïcode"}', '{"prompt":"x"}'];
      const job = await admit(store, makeJob(requests, { type: 'chat', options: { truncate: true, keepAlive: '5m' } }));
      assert.equal(job.type, 'chat');
      assert.deepEqual(job.options, { truncate: true, keepAlive: '5m' });
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 4), requests.map((text, index) => ({ index, text })), 'identical requests are not de-duplicated');
      const result = (n: number): string => JSON.stringify({ message: { role: 'assistant', content: `reply ${n} – ✓` }, done_reason: 'stop', eval_count: n });
      assert.ok(await store.recordGenerations(job.id, { done: [{ index: 0, result: result(0) }, { index: 2, result: result(2) }], failed: [] }));
      assert.ok(await store.recordGenerations(job.id, { done: [{ index: 0, result: result(99) }], failed: [failed(3, 'BACKEND_TIMEOUT')] }), 'a repeat is written');
      const other = await another();
      const record = await other.get(ALICE, job.id);
      assert.deepEqual([record?.type, record?.completedItems, record?.failedItems, record?.dimensions], ['chat', 2, 1, null], 'each item counted once');
      const items = await other.readResults(ALICE, job.id, 0, 4);
      assert.deepEqual(items, [
        { index: 0, state: 'generated', result: result(0) },
        { index: 1, state: 'pending' },
        { index: 2, state: 'generated', result: result(2) },
        { index: 3, state: 'failed', code: 'BACKEND_TIMEOUT', error: 'doc 3 failed' },
      ]);
      assert.ok(await store.recordGenerations(job.id, { done: [{ index: 1, result: result(1) }], failed: [] }));
      await finish(store, job.id, 'completed');
      assert.equal(await store.recordGenerations(job.id, { done: [{ index: 3, result: result(3) }], failed: [] }), false, 'nothing is written once the job is over');
      const retry = await store.admitRetry(ALICE, job.id, { id: randomUUID(), owner: 'alice', status: 'running', createdAt: Date.now() }, policy());
      assert.ok(retry !== 'not-found' && retry !== 'active' && retry.admitted);
      assert.deepEqual([retry.job.type, retry.job.completedItems, retry.job.totalItems], ['chat', 3, 4]);
      assert.deepEqual(await store.pendingDocuments(retry.job.id, 0, 4), [{ index: 3, text: requests[3] }]);
      assert.deepEqual((await store.readResults(ALICE, retry.job.id, 0, 3))[2], { index: 2, state: 'generated', result: result(2) });
      const cache = await store.cacheStats();
      assert.deepEqual([cache.entries, cache.hits], [0, 0], 'generation results never enter the embedding cache');
    });
  });
}

// ---- adapters ----------------------------------------------------------------------------

const RETRY_OF_EVICTED = 'admitRetry of the oldest finished job when the store is full: the copy survives its eviction';

const sqliteHarness: Harness = {
  name: 'sqlite',

  async open(t, cacheMaxBytes = CACHE_BYTES) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-conformance-'));
    const file = path.join(dir, 'sollol.db');
    const stores: SqliteJobStore[] = [];
    const open = (): SqliteJobStore => {
      const store = new SqliteJobStore(new Database(file), { maxBytes: cacheMaxBytes });
      stores.push(store);
      return store;
    };
    t.after(async () => {
      for (const store of stores) await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const store = open();
    return {
      store,
      another: async () => open(),
      leftovers: async (id) => sqliteLeftovers(file, id),
    };
  },
};

function sqliteLeftovers(file: string, id: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    const jobs = db.prepare('SELECT id FROM jobs WHERE id = ?').all(id).map(() => `jobs row ${id}`);
    const orphans = (db.prepare('SELECT COUNT(*) AS n FROM documents WHERE job_seq NOT IN (SELECT seq FROM jobs)').get() as { n: number }).n;
    return orphans > 0 ? [...jobs, `${orphans} orphan documents`] : jobs;
  } finally {
    db.close();
  }
}

const redisServer = await testRedis();
after(() => ('stop' in redisServer ? redisServer.stop() : undefined));
const redisUrl = 'url' in redisServer ? redisServer.url : '';

/** Every key under `prefix`. */
async function scanKeys(client: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of client.scanStream({ match: `${prefix}*`, count: 1000 })) keys.push(...(batch as string[]));
  return keys;
}

/** Keys of job `id`, and index entries naming it. */
async function redisLeftovers(client: Redis, prefix: string, id: string): Promise<string[]> {
  const found: string[] = [];
  for (const key of await scanKeys(client, prefix)) {
    if (key.includes(id)) found.push(key);
    else if ((await client.type(key)) === 'zset' && (await client.zrange(key, 0, -1)).some((m) => m.includes(id))) found.push(`${key} member`);
    else if ((await client.type(key)) === 'hash' && key.includes(':idx:') && (await client.hexists(key, id))) found.push(`${key} field`);
  }
  return found;
}

async function openRedis(t: TestContext, cacheMaxBytes = CACHE_BYTES): Promise<Opened & { client: Redis; prefix: string; redisStore: RedisJobStore }> {
  const prefix = `sollol-test-${randomUUID()}:`;
  const clients: Redis[] = [];
  const open = (): RedisJobStore => {
    const client = testClient(redisUrl);
    clients.push(client);
    return new RedisJobStore(client, { prefix, cache: { maxBytes: cacheMaxBytes } });
  };
  const redisStore = open();
  const client = clients[0]!;
  t.after(async () => {
    const keys = await scanKeys(client, prefix);
    if (keys.length > 0) await client.unlink(...keys);
    await Promise.all(clients.map((c) => c.quit()));
  });
  return { store: redisStore, redisStore, client, prefix, another: async () => open(), leftovers: (id) => redisLeftovers(client, prefix, id) };
}

const redisHarness: Harness = {
  name: 'redis',
  ...('skip' in redisServer ? { skip: redisServer.skip } : {}),
  open: (t, cacheMaxBytes) => openRedis(t, cacheMaxBytes),
};

/** The embedded store with its writes on the writer thread (threadedStore.ts), as the gateway opens it. */
const threadedHarness: Harness = {
  name: 'sqlite, writer thread',

  async open(t, cacheMaxBytes = CACHE_BYTES) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-conformance-'));
    const stores: JobStore[] = [];
    const open = async (): Promise<JobStore> => {
      const { store } = await openThreadedStore({ dataDir: dir, cache: { maxBytes: cacheMaxBytes }, reserveBytes: 0 });
      stores.push(store);
      return store;
    };
    t.after(async () => {
      for (const store of stores) await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const store = await open();
    return { store, another: open, leftovers: async (id) => sqliteLeftovers(path.join(dir, 'sollol.db'), id) };
  },
};

conformance(sqliteHarness);
conformance(threadedHarness);
conformance(redisHarness);

// ---- Redis only: expiry of every key, raw vectors, memory ------------------------------------

describe('Redis store: keys, expiry and memory', { skip: 'skip' in redisServer ? redisServer.skip : undefined }, () => {
  const jobKeysOf = (s: RedisJobStore, id: string) => s.keys.jobKeys(id);

  nodeTest('no key of an active job expires; finishing sets the TTL on all of them and keeps only the texts a retry needs', async (t) => {
    const { redisStore: store, client } = await openRedis(t);
    const job = await admit(store, makeJob(['a', 'b', 'a', 'c']));
    await store.recordChunk(job.id, chunk([done(0)], [failed(1)]));
    for (const key of jobKeysOf(store, job.id)) assert.ok([-1, -2].includes(await client.pttl(key)), `${key} has no expiry while active`);
    assert.equal(await client.hlen(store.keys.job(job.id, ':text')), 4);

    const at = Date.now();
    await finish(store, job.id, 'cancelled', at, 60_000);
    const existing = [];
    for (const key of jobKeysOf(store, job.id)) {
      if (!(await client.exists(key))) continue;
      existing.push(key.slice(store.keys.prefix.length));
      assert.equal(Number(await client.call('PEXPIRETIME', key)), at + 60_000, `${key} expires with the job`);
    }
    assert.deepEqual(existing.sort(), [`job:${job.id}`, `job:${job.id}:dup`, `job:${job.id}:err`, `job:${job.id}:keys`, `job:${job.id}:state`, `job:${job.id}:text`, `job:${job.id}:vec`].sort());
    assert.deepEqual((await client.hkeys(store.keys.job(job.id, ':text'))).sort(), ['1', '3'], 'texts of done documents are dropped');

    const retry = await store.admitRetry(ALICE, job.id, { id: randomUUID(), owner: 'alice', status: 'running', createdAt: Date.now() }, policy());
    assert.ok(typeof retry === 'object' && retry.admitted);
    for (const key of jobKeysOf(store, retry.job.id)) assert.ok([-1, -2].includes(await client.pttl(key)), `retry key ${key} has no expiry`);

    const all = await admit(store, makeJob(['x', 'y']));
    await store.recordChunk(all.id, chunk([done(0), done(1)]));
    await finish(store, all.id);
    for (const suffix of [':text', ':keys', ':dup'] as const) assert.equal(await client.exists(store.keys.job(all.id, suffix)), 0, `${suffix} dropped when every document is done`);
  });

  nodeTest('vectors are stored once, as raw float32 bytes, one hash field per document', async (t) => {
    const { redisStore: store, client } = await openRedis(t, 0);
    const job = await admit(store, makeJob(['a', 'b']));
    await store.recordChunk(job.id, chunk([done(0, 5), done(1, 6)]));
    const raw = await client.hgetBuffer(store.keys.job(job.id, ':vec'), '0');
    assert.ok(raw?.equals(vectorToBlob(vector(5))), 'little-endian float32, exactly');
    assert.equal(await client.hlen(store.keys.job(job.id, ':vec')), 2);
    assert.deepEqual((await scanKeys(client, store.keys.prefix)).filter((k) => k.includes('cache:')), [], 'the cache is off: no second copy');
  });

  nodeTest("Redis expiry removes a finished job's keys by itself; the next list cleans the indexes", async (t) => {
    const { redisStore: store, client, leftovers } = await openRedis(t);
    const job = await admit(store, makeJob(['a', 'b']));
    await store.recordChunk(job.id, chunk([done(0), done(1)]));
    await finish(store, job.id, 'completed', Date.now(), 200);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.deepEqual((await scanKeys(client, store.keys.prefix)).filter((k) => k.includes(job.id)), [], 'every key expired by Redis');
    assert.equal(await store.get(ADMIN_SCOPE, job.id), undefined);
    assert.deepEqual(await store.list(ADMIN_SCOPE, { limit: 10 }), { jobs: [], total: 0 });
    assert.deepEqual(await leftovers(job.id), [], 'index entries cleaned');
  });

  nodeTest('deployments on different prefixes do not see each other', async (t) => {
    const a = await openRedis(t);
    const b = await openRedis(t);
    const job = await admit(a.store, makeJob(['a']));
    assert.equal(await b.store.get(ADMIN_SCOPE, job.id), undefined);
    assert.equal((await b.store.counters(ADMIN_SCOPE)).totalJobsCreated, 0);
    assert.deepEqual(await b.store.unfinishedJobs(), []);
  });

  nodeTest('a finished 10,000 x 768 job takes at most 1.5x its raw vectors in Redis memory', async (t) => {
    const { redisStore: store, client } = await openRedis(t, 64 << 20);
    const total = 10_000;
    const dims = 768;
    const chunkSize = 64;
    const job = await admit(store, makeJob(Array.from({ length: total }, (_, i) => `document ${i}: some text of ordinary length for an embedding`)));
    const started = Date.now();
    for (let from = 0; from < total; from += chunkSize) {
      const docs = await store.pendingDocuments(job.id, from, from + chunkSize);
      await store.recordChunk(job.id, chunk(docs.map(({ index }) => ({ index, vector: vector(index, dims), truncated: false }))));
    }
    const writeMs = Date.now() - started;
    const memory = async (keys: string[]) => {
      let bytes = 0;
      for (const key of keys) bytes += Number((await client.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) ?? 0);
      return bytes;
    };
    const active = await memory(jobKeysOf(store, job.id));
    const finished = await finish(store, job.id);
    assert.equal(finished.completedItems, total);
    const jobBytes = await memory(jobKeysOf(store, job.id));
    const cacheKeys = (await scanKeys(client, store.keys.prefix)).filter((k) => k.includes('cache:'));
    const cacheBytes = await memory(cacheKeys);
    const raw = total * dims * 4;
    const ratio = jobBytes / raw;
    const page = await store.readResults(ALICE, job.id, 9_000, 1_000);
    assertSameVector(page[999], vector(9_999, dims));
    const report = `job keys ${(jobBytes / 1e6).toFixed(1)} MB = ${ratio.toFixed(3)}x raw ${(raw / 1e6).toFixed(1)} MB ` +
      `(while active, with texts: ${(active / 1e6).toFixed(1)} MB); content cache ${(cacheBytes / 1e6).toFixed(1)} MB; ` +
      `${total} vectors written in ${writeMs} ms`;
    t.diagnostic(report);
    assert.ok(ratio <= 1.5, report);
  });
});

// ---- job control (issue 15): scheduled jobs in the JobStore, and the ControlStore port -------------

interface ControlOpened {
  readonly store: JobStore;
  readonly control: ControlStore;
  /** The same data opened again, as after a restart or from another gateway. */
  another(): Promise<{ store: JobStore; control: ControlStore }>;
}

function controlConformance(name: string, skip: string | undefined, open: (t: TestContext) => Promise<ControlOpened>): void {
  const controlRecord = (jobId: string, extra: Partial<JobControl> = {}): JobControl => ({
    jobId, owner: 'alice', priority: 'normal', runAt: null, dependsOn: [], documentsFrom: null, template: null, createdAt: Date.now(), ...extra,
  });
  describe(`Job control conformance: ${name}`, { skip }, () => {
    nodeTest('a scheduled job is stored, listed and counted, active (not purgeable, not resumed), and leaves by the table', async (t) => {
      const { store } = await open(t);
      const job = await admit(store, makeJob(['a', 'b', 'c'], { status: 'scheduled' }));
      assert.equal(job.status, 'scheduled');
      assert.equal(job.startedAt, null);
      assert.deepEqual((await store.list(ALICE, { limit: 10, status: 'scheduled' })).jobs.map((j) => j.id), [job.id]);
      assert.equal((await store.counters(ADMIN_SCOPE)).storedJobs, 1);
      assert.equal(await store.purge(ALICE, job.id), 'active');
      assert.deepEqual((await store.unfinishedJobs()).map((j) => j.id), [], 'the promoter releases it, not the resume');
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 3), [], 'no documents handed out while scheduled');
      const at = Date.now();
      const released = await store.transition(job.id, 'running', { at });
      assert.equal(released?.startedAt, at);
      const other = await admit(store, makeJob(['x', 'y'], { status: 'scheduled' }));
      const failedJob = await store.transition(other.id, 'failed', { at, expiresAt: at + 60_000, error: { code: 'DEPENDENCY_FAILED', error: 'parent p failed' } });
      assert.equal(failedJob?.failedItems, 2);
      assert.deepEqual((await store.readResults(ALICE, other.id, 0, 2)).map((r) => (r.state === 'failed' ? r.code : r.state)), ['DEPENDENCY_FAILED', 'DEPENDENCY_FAILED']);
    });

    nodeTest('documents_from: a scheduled job without documents is filled once, texts pending and parent failures failed by index', async (t) => {
      const { store, control } = await open(t);
      const job = await admit(store, makeJob([], { status: 'scheduled' }));
      assert.equal(job.totalItems, 0);
      const filled = await control.fillScheduledDocuments(job.id, [{ text: 'a' }, { code: 'DEPENDENCY_FAILED', error: 'Item 1 of parent p failed' }, { text: 'c' }]);
      assert.equal(filled, true);
      assert.equal(await control.fillScheduledDocuments(job.id, [{ text: 'again' }]), false, 'only once');
      const after = await store.get(ALICE, job.id);
      assert.deepEqual([after?.totalItems, after?.failedItems, after?.completedItems], [3, 1, 0]);
      await store.transition(job.id, 'running', { at: Date.now() });
      assert.deepEqual(await store.pendingDocuments(job.id, 0, 3), [{ index: 0, text: 'a' }, { index: 2, text: 'c' }]);
      const items = await store.readResults(ALICE, job.id, 0, 3);
      assert.deepEqual(items[1], { index: 1, state: 'failed', code: 'DEPENDENCY_FAILED', error: 'Item 1 of parent p failed' });
      const running = await admit(store, makeJob([], { status: 'running' }));
      assert.equal(await control.fillScheduledDocuments(running.id, [{ text: 'x' }]), false, 'not scheduled: refused');
    });

    nodeTest('control records: kept, read in bulk, priority changed, deleted; the same from another instance', async (t) => {
      const { control, another } = await open(t);
      const a = randomUUID();
      const b = randomUUID();
      await control.putControl(controlRecord(a, { priority: 'high', runAt: 1_900_000_000_000, dependsOn: [b], template: 'nightly' }));
      await control.putControl(controlRecord(b));
      const other = (await another()).control;
      const both = await other.controls([a, b, randomUUID()]);
      assert.deepEqual([...both.keys()].sort(), [a, b].sort());
      assert.deepEqual(both.get(a), controlRecord(a, { priority: 'high', runAt: 1_900_000_000_000, dependsOn: [b], template: 'nightly', createdAt: both.get(a)!.createdAt }));
      assert.equal(await other.setPriority(a, 'low'), true);
      assert.equal((await control.controls([a])).get(a)?.priority, 'low');
      assert.equal(await control.setPriority(randomUUID(), 'low'), false, 'no record, nothing changed');
      assert.deepEqual((await control.controlledJobIds()).sort(), [a, b].sort());
      await control.deleteControl(a);
      assert.deepEqual(await control.controlledJobIds(), [b]);
      assert.equal((await control.controls([a])).size, 0);
    });

    nodeTest('webhooks: kept with their attempts, listed while open, claimed by one caller at a time', async (t) => {
      const { control, another } = await open(t);
      const id = randomUUID();
      const now = Date.now();
      await control.putWebhook({ jobId: id, owner: 'alice', url: 'http://127.0.0.1:1/h', state: 'waiting', attempts: [], nextAttemptAt: 0, firstAttemptAt: null, createdAt: now });
      const other = (await another()).control;
      assert.deepEqual((await other.openWebhooks(10)).map((w) => w.jobId), [id]);
      const claimed = await control.claimWebhook(id, now, now + 30_000);
      assert.equal(claimed?.nextAttemptAt, now + 30_000);
      assert.deepEqual(claimed?.attempts, []);
      assert.equal(await other.claimWebhook(id, now + 1, now + 30_000), undefined, 'leased: nobody else takes it');
      await control.putWebhook({ ...claimed!, state: 'retrying', attempts: [{ at: now, statusCode: 500 }], firstAttemptAt: now, nextAttemptAt: now + 100 });
      assert.equal(await other.claimWebhook(id, now + 50, now + 30_000), undefined, 'not due yet');
      const again = await other.claimWebhook(id, now + 100, now + 30_000);
      assert.deepEqual(again?.attempts, [{ at: now, statusCode: 500 }]);
      await other.putWebhook({ ...again!, state: 'delivered', attempts: [...again!.attempts, { at: now + 100, statusCode: 200 }] });
      assert.deepEqual(await control.openWebhooks(10), [], 'a delivered webhook is no longer open');
      assert.equal((await control.webhooks([id])).get(id)?.state, 'delivered');
      await control.putControl(controlRecord(id));
      await control.deleteControl(id);
      assert.equal((await control.webhooks([id])).size, 0, 'deleted with the control record');
    });

    nodeTest('templates: one per owner and name, listed by name, due runs advanced once (compare-and-set), deleted', async (t) => {
      const { control, another } = await open(t);
      const now = Date.now();
      const tpl = (owner: string, name: string, nextRunAt: number | null): Template => ({
        owner, name, jobType: 'embed', model: MODEL, options: {}, metadata: { a: 1 }, priority: 'low', callbackUrl: null,
        schedule: nextRunAt === null ? null : '* * * * *', input: nextRunAt === null ? null : { documents: ['x'] }, createdAt: now, nextRunAt,
      });
      assert.equal(await control.putTemplate(tpl('alice', 'b', null)), true);
      assert.equal(await control.putTemplate(tpl('alice', 'a', now - 10)), true);
      assert.equal(await control.putTemplate(tpl('bob', 'a', now + 60_000)), true);
      assert.equal(await control.putTemplate(tpl('alice', 'a', null)), false, 'the name is taken');
      const other = (await another()).control;
      assert.deepEqual((await other.templates('alice')).map((x) => x.name), ['a', 'b']);
      assert.equal((await other.templates(null)).length, 3);
      assert.deepEqual(await other.template('alice', 'a'), tpl('alice', 'a', now - 10));
      assert.deepEqual((await control.dueTemplates(now)).map((x) => `${x.owner}/${x.name}`), ['alice/a']);
      assert.equal(await control.advanceTemplate('alice', 'a', now - 10, now + 50_000), true);
      assert.equal(await other.advanceTemplate('alice', 'a', now - 10, now + 50_000), false, 'the run was claimed once');
      assert.deepEqual(await control.dueTemplates(now), []);
      assert.equal((await other.template('alice', 'a'))?.nextRunAt, now + 50_000);
      assert.equal(await control.deleteTemplate('alice', 'a'), true);
      assert.equal(await control.deleteTemplate('alice', 'a'), false);
      assert.equal(await control.template('alice', 'a'), undefined);
      assert.deepEqual((await control.dueTemplates(now + 100_000)).map((x) => `${x.owner}/${x.name}`), ['bob/a']);
    });

    nodeTest('autobatch: entries queued per owner and target, taken once up to a boundary, flushes listed newest first', async (t) => {
      const { control, another } = await open(t);
      const entry = (owner: string, target: string, documents: string[], queuedAt: number) => ({ owner, target, documents, metadata: null, queuedAt });
      await control.queueAutobatch(entry('alice', 'model:m', ['a', 'b'], 1000));
      await control.queueAutobatch({ ...entry('alice', 'model:m', ['c'], 1500), metadata: { k: 1 } });
      await control.queueAutobatch(entry('alice', 'model:m', ['late'], 2500));
      await control.queueAutobatch(entry('bob', 'template:t', ['x'], 1200));
      const other = (await another()).control;
      assert.deepEqual(await other.autobatchQueued('alice'), [{ owner: 'alice', target: 'model:m', documents: 4, oldestAt: 1000 }]);
      assert.equal((await other.autobatchQueued(null)).length, 2);
      const taken = await control.takeAutobatch('alice', 'model:m', 2000);
      assert.deepEqual(taken.map((e) => e.documents), [['a', 'b'], ['c']]);
      assert.deepEqual(taken[1]?.metadata, { k: 1 });
      assert.deepEqual(await other.takeAutobatch('alice', 'model:m', 2000), [], 'taken once');
      assert.deepEqual(await other.autobatchQueued('alice'), [{ owner: 'alice', target: 'model:m', documents: 1, oldestAt: 2500 }]);
      await control.addAutobatchFlush({ owner: 'alice', target: 'model:m', jobIds: ['j1', 'j2'], documents: 3, flushedAt: 2000 });
      await control.addAutobatchFlush({ owner: 'bob', target: 'template:t', jobIds: ['j3'], documents: 1, flushedAt: 2100 });
      assert.deepEqual(await other.autobatchHistory('alice', 10), [{ owner: 'alice', target: 'model:m', jobIds: ['j1', 'j2'], documents: 3, flushedAt: 2000 }]);
      assert.deepEqual((await other.autobatchHistory(null, 10)).map((f) => f.jobIds), [['j3'], ['j1', 'j2']]);
      assert.equal((await other.autobatchHistory(null, 1)).length, 1);
    });

    nodeTest('idempotency answers: the first one kept wins, per owner and key, until it expires', async (t) => {
      const { control, another } = await open(t);
      const now = Date.now();
      const first = { fingerprint: 'f1', statusCode: 200, body: '{"job_id":"1"}', expiresAt: now + 60_000 };
      const second = { fingerprint: 'f2', statusCode: 200, body: '{"job_id":"2"}', expiresAt: now + 60_000 };
      assert.deepEqual(await control.keepIdempotentAnswer('alice', 'k', first, now), first);
      const other = (await another()).control;
      assert.deepEqual(await other.keepIdempotentAnswer('alice', 'k', second, now), first, 'a racing second answer gets the first');
      assert.deepEqual(await other.idempotentAnswer('alice', 'k', now), first);
      assert.equal(await control.idempotentAnswer('bob', 'k', now), undefined, 'keys are per owner');
      assert.equal(await control.idempotentAnswer('alice', 'k:other', now), undefined);
      const short = { ...first, expiresAt: now + 1 };
      await control.keepIdempotentAnswer('alice', 'short', short, now);
      assert.equal(await control.idempotentAnswer('alice', 'short', now + 2), undefined, 'expired answers are not answered');
      assert.deepEqual(await control.keepIdempotentAnswer('alice', 'short', second, now + 2), second, 'an expired key can be used again');
      const reserved = await control.reserveIdempotency('alice', 'r', 'fr', now, now + 1000);
      assert.equal(reserved, 'reserved');
      assert.deepEqual(await other.reserveIdempotency('alice', 'r', 'fr', now, now + 1000), { fingerprint: 'fr', statusCode: 0, body: '', expiresAt: now + 1000 }, 'a second caller sees the reservation');
      assert.equal(await other.reserveIdempotency('alice', 'r', 'fr', now + 1001, now + 2000), 'reserved', 'an expired reservation frees the key');
      const final = { fingerprint: 'fr', statusCode: 200, body: '{"job_id":"r"}', expiresAt: now + 60_000 };
      assert.deepEqual(await control.keepIdempotentAnswer('alice', 'r', final, now), final, 'the answer replaces the reservation');
      await control.releaseIdempotency('alice', 'r', 'fr');
      assert.deepEqual(await control.reserveIdempotency('alice', 'r', 'fr', now, now + 1000), final, 'a final answer is not released');
      assert.equal(await control.reserveIdempotency('alice', 'gone', 'fg', now, now + 1000), 'reserved');
      await other.releaseIdempotency('alice', 'gone', 'another-fingerprint');
      assert.notEqual(await control.reserveIdempotency('alice', 'gone', 'fg', now, now + 1000), 'reserved', "only the reserver's release counts");
      await other.releaseIdempotency('alice', 'gone', 'fg');
      assert.equal(await control.reserveIdempotency('alice', 'gone', 'fg', now, now + 1000), 'reserved', 'released: free again');
      await control.sweepIdempotency(now + 120_000);
      assert.equal(await control.idempotentAnswer('alice', 'k', now + 120_000), undefined);
    });
  });
}

controlConformance('sqlite', undefined, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-control-'));
  const file = path.join(dir, 'sollol.db');
  const stores: SqliteJobStore[] = [];
  const openOne = () => {
    const store = new SqliteJobStore(new Database(file), { maxBytes: 0 });
    stores.push(store);
    return { store, control: new SqliteControlStore(store) };
  };
  t.after(async () => {
    for (const store of stores) await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { ...openOne(), another: async () => openOne() };
});

controlConformance('sqlite, writer thread', undefined, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-control-'));
  const opened: { store: JobStore; control: ControlStore }[] = [];
  const openOne = async () => {
    const pair = await openThreadedStore({ dataDir: dir, cache: { maxBytes: 0 }, reserveBytes: 0 });
    opened.push(pair);
    return pair;
  };
  t.after(async () => {
    for (const { store } of opened) await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { ...(await openOne()), another: openOne };
});

controlConformance('redis', 'skip' in redisServer ? redisServer.skip : undefined, async (t) => {
  const opened = await openRedis(t, 0);
  const control = new RedisControlStore(opened.client, new RedisKeys(opened.prefix));
  return {
    store: opened.store,
    control,
    another: async () => {
      const store = (await opened.another()) as RedisJobStore;
      return { store, control: new RedisControlStore(testClientFor(t), store.keys) };
    },
  };
});

function testClientFor(t: TestContext): Redis {
  const client = testClient(redisUrl);
  t.after(() => client.quit());
  return client;
}
