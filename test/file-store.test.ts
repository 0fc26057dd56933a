/**
 * The FileStore port on both adapters (SQLite file, real Redis under a unique prefix): a file
 * written in chunks (a batch's output) is invisible until committed, reads back byte for byte
 * a chunk at a time, survives a second writer of the same file (two gateways finalising one
 * batch), and goes entirely with delete.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { ADMIN_SCOPE } from '../src/jobs/model.js';
import { RedisFileStore } from '../src/store/files/redisFiles.js';
import { SqliteFileStore } from '../src/store/files/sqliteFiles.js';
import type { FileStore } from '../src/store/files/types.js';
import { tempDir } from './helpers.js';
import { deletePrefix, uniquePrefix } from './redisKeys.js';
import { testRedis } from './redisServer.js';

const owner = { kind: 'owner', owner: 'alice' } as const;
const meta = (id: string) => ({ id, owner: 'alice', createdAt: Date.now(), filename: `${id}.jsonl`, purpose: 'batch_output' });

async function collect(chunks: AsyncIterable<Buffer> | undefined): Promise<Buffer[] | undefined> {
  if (!chunks) return undefined;
  const out: Buffer[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

async function conformance(store: FileStore, chunkRows: () => Promise<number>): Promise<void> {
  const parts = [Buffer.from('{"a":1}\n'), Buffer.alloc(300_000, 0x41), Buffer.from('last\n')];
  const writer = await store.writer(meta('file-out'));
  for (const part of parts) await writer.append(part);
  assert.equal(await store.get(ADMIN_SCOPE, 'file-out'), undefined, 'invisible before commit');
  assert.equal(await store.content(ADMIN_SCOPE, 'file-out'), undefined);
  assert.equal((await store.list(ADMIN_SCOPE, { limit: 10 })).files.length, 0);
  await writer.commit();
  const file = await store.get(owner, 'file-out');
  assert.equal(file?.bytes, 300_000 + 8 + 5);
  assert.deepEqual(await store.content(owner, 'file-out'), Buffer.concat(parts));
  const read = await collect(await store.chunks(owner, 'file-out'));
  assert.deepEqual(read, parts, 'the chunks as appended, in order');
  assert.equal(await store.chunks({ kind: 'owner', owner: 'bob' }, 'file-out'), undefined, 'owned like jobs');

  // A second writer of the same file commits while a download of the first is under way.
  const again = await store.writer(meta('file-out'));
  const download = (await store.chunks(owner, 'file-out'))![Symbol.asyncIterator]();
  const first = await download.next();
  for (const part of parts) await again.append(part);
  await again.commit();
  const rest: Buffer[] = [first.value as Buffer];
  for (let next = await download.next(); !next.done; next = await download.next()) rest.push(next.value);
  assert.deepEqual(Buffer.concat(rest), Buffer.concat(parts), 'the download went on with its writer');
  assert.deepEqual(await store.content(owner, 'file-out'), Buffer.concat(parts));
  assert.equal((await store.list(ADMIN_SCOPE, { limit: 10 })).files.length, 1);

  // An uploaded file reads back as one chunk; an empty written one as nothing but a file.
  await store.put({ ...meta('file-up'), bytes: 3 }, Buffer.from('abc'));
  assert.deepEqual(await collect(await store.chunks(owner, 'file-up')), [Buffer.from('abc')]);
  const empty = await store.writer(meta('file-empty'));
  await empty.commit();
  assert.equal((await store.get(owner, 'file-empty'))?.bytes, 0);
  assert.deepEqual(await store.content(owner, 'file-empty'), Buffer.alloc(0));

  assert.ok((await chunkRows()) > 0);
  assert.equal(await store.delete(owner, 'file-out'), true);
  assert.equal(await store.get(ADMIN_SCOPE, 'file-out'), undefined);
  assert.equal(await chunkRows(), 0, "every writer's chunks went with the file");
}

test('FileStore on SQLite', async (t: TestContext) => {
  const dir = tempDir(t);
  const store = new SqliteFileStore(dir);
  t.after(() => store.close());
  const { default: Database } = await import('better-sqlite3');
  const rows = async (): Promise<number> => {
    const db = new Database(`${dir}/files.sqlite`, { readonly: true });
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM file_chunks').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  await conformance(store, rows);
});

test('FileStore on Redis', async (t) => {
  const server = await testRedis();
  if ('skip' in server) return t.skip(server.skip);
  const prefix = uniquePrefix('filestore');
  const redis = new Redis(server.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
  t.after(async () => {
    await deletePrefix(redis, prefix);
    redis.disconnect();
    await server.stop();
  });
  const rows = async (): Promise<number> => (await redis.keys(`${prefix}file:*:chunks:*`)).length;
  await conformance(new RedisFileStore(redis, prefix), rows);
});
