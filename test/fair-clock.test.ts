/**
 * The fair-share clock in our own Redis key (issue 11 item 4): under a backlog whose virtual
 * time has reached BullMQ's priority limit (2^21), new jobs still get distinct, increasing
 * priorities that interleave job by job, instead of all clamping to the limit (FIFO). Real
 * BullMQ queue on the shared Redis under a unique prefix.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChunkQueue, chunkJobId } from '../src/execution/bullQueue.js';
import { PRIORITY_LIMIT } from '../src/execution/fairClock.js';
import { priorityStride } from '../src/jobs/priority.js';
import { redisSuite, testClient } from './redisServer.js';

const redis = await redisSuite();
const { skip, client } = redis;

test('a backlog at the priority limit does not clamp new jobs into FIFO: chunks stay ordered and interleave by job', { skip }, async (t) => {
  const prefix = redis.prefix('fair');
  const connection = testClient(redis.url);
  const queue = new ChunkQueue(connection, prefix);
  t.after(async () => {
    await queue.close();
    connection.disconnect();
  });
  // A backlog that never drained: its head chunk sits at the limit, and so does the fair clock.
  await client!.hset(`${prefix}job:backlog`, 'status', 'running');
  await queue.queue.add('chunk', { jobId: 'backlog', start: 0, end: 1, attempt: 0, ttlMs: 1000, pendingTimeoutMs: 1000, virtual: PRIORITY_LIMIT }, { jobId: 'backlog-c0', priority: PRIORITY_LIMIT });
  await client!.hset(`${prefix}fair`, 'clock', PRIORITY_LIMIT, 'epoch', 0);

  for (const id of ['a', 'b']) {
    await client!.hset(`${prefix}job:${id}`, 'status', 'running');
    assert.equal(await queue.enqueue({ jobId: id, totalItems: 100, chunkSize: 10, ttlMs: 1000, pendingTimeoutMs: 1000 }), 10);
  }
  const priority = async (id: string): Promise<number> => (await queue.queue.getJob(id))!.priority;
  const a = await Promise.all(Array.from({ length: 10 }, (_, k) => priority(chunkJobId('a', k))));
  const b = await Promise.all(Array.from({ length: 10 }, (_, k) => priority(chunkJobId('b', k))));
  for (let k = 1; k < 10; k++) assert.ok(a[k]! > a[k - 1]!, `job a's chunk ${k} after chunk ${k - 1}: ${a.join(',')}`);
  assert.deepEqual(b, a, 'chunk k of each job shares a round');
  assert.ok(a[9]! < PRIORITY_LIMIT, 'nothing at the limit');
  assert.ok((await priority('backlog-c0')) <= a[0]!, 'the backlog head keeps its place ahead of the new jobs');

  // Workers taking chunks move the clock: a job enqueued later starts at the clock, behind earlier rounds.
  await queue.fair.advance(PRIORITY_LIMIT + 5 * priorityStride('normal'));
  await client!.hset(`${prefix}job:c`, 'status', 'running');
  await queue.enqueue({ jobId: 'c', totalItems: 10, chunkSize: 10, ttlMs: 1000, pendingTimeoutMs: 1000 });
  assert.equal(await priority(chunkJobId('c', 0)), a[5], 'job c joins the round the workers are in');
});
