/** The BatchStore port on both adapters (SQLite file, real Redis under a unique prefix): ownership, pages, compare-and-set. */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { RedisBatchStore, SqliteBatchStore, type BatchStore, type StoredBatch } from '../src/openaiBatch/batchStore.js';
import { batchObject } from '../src/openaiBatch/objects.js';
import { tempDir } from './helpers.js';
import { deletePrefix, uniquePrefix } from './redisKeys.js';
import { testRedis } from './redisServer.js';

function batch(id: string, owner: string, created: number): StoredBatch {
  return {
    id,
    owner,
    endpoint: '/v1/embeddings',
    inputFileId: 'file-x',
    completionWindow: '24h',
    status: 'in_progress',
    metadata: { k: 'v' },
    errors: [],
    outputFileId: null,
    errorFileId: null,
    times: { created, in_progress: created + 1000 },
    counts: { total: 2, completed: 0, failed: 0 },
    jobs: [{ group: 'g', jobId: 'j', lines: 2, items: 2 }],
  };
}

async function conformance(store: BatchStore): Promise<void> {
  const alice = { kind: 'owner', owner: 'alice' } as const;
  const bob = { kind: 'owner', owner: 'bob' } as const;
  await store.put(batch('batch_1', 'alice', 1_000_000));
  await store.put(batch('batch_2', 'bob', 2_000_000));
  await store.put(batch('batch_3', 'alice', 3_000_000));
  assert.equal((await store.get(alice, 'batch_1'))?.id, 'batch_1');
  assert.equal(await store.get(bob, 'batch_1'), undefined, "another owner's batch is invisible");
  assert.equal((await store.get({ kind: 'admin' }, 'batch_1'))?.owner, 'alice');
  const page = await store.list(alice, { limit: 1 });
  assert.deepEqual(page.batches.map((b) => b.id), ['batch_3']);
  assert.equal(page.hasMore, true);
  const next = await store.list(alice, { limit: 5, after: 'batch_3' });
  assert.deepEqual(next.batches.map((b) => b.id), ['batch_1']);
  assert.equal(next.hasMore, false);
  assert.deepEqual((await store.list({ kind: 'admin' }, { limit: 10 })).batches.map((b) => b.id), ['batch_3', 'batch_2', 'batch_1']);

  // Compare-and-set: of two concurrent moves out of in_progress exactly one wins.
  const [a, b] = await Promise.all([
    store.update('batch_1', ['in_progress'], { status: 'cancelling', times: { cancelling: 5000 } }),
    store.update('batch_1', ['in_progress'], { status: 'finalizing', times: { finalizing: 5000 } }),
  ]);
  assert.equal([a, b].filter((x) => x !== undefined).length, 1);
  const moved = (await store.get(alice, 'batch_1'))!;
  assert.ok(['cancelling', 'finalizing'].includes(moved.status));
  assert.equal(moved.times.in_progress, 1_001_000, 'times merge');
  assert.equal(await store.update('batch_1', ['in_progress'], { status: 'completed' }), undefined);
  const done = await store.update('batch_1', [moved.status], { status: 'completed', times: { completed: 6000 }, outputFileId: 'file-out', counts: { total: 2, completed: 2, failed: 0 } });
  assert.equal(done?.status, 'completed');
  assert.equal(batchObject(done!).completed_at, 6);
  assert.deepEqual((await store.unfinished()).map((x) => x.id).sort(), ['batch_2', 'batch_3']);
  assert.equal(await store.update('nope', ['in_progress'], { status: 'completed' }), undefined);
}

test('BatchStore on SQLite', async (t: TestContext) => {
  const store = new SqliteBatchStore(tempDir(t));
  t.after(() => store.close());
  await conformance(store);
});

test('BatchStore on Redis', async (t) => {
  const server = await testRedis();
  if ('skip' in server) return t.skip(server.skip);
  const prefix = uniquePrefix('batchstore');
  const redis = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  t.after(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
    await server.stop();
  });
  await conformance(new RedisBatchStore(redis, prefix));
});
