/** The weighted fair queue (stride scheduling) as pure logic: shares by priority, turns, no starvation, changes of priority. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FairQueue } from '../src/execution/fairQueue.js';
import { priorityStride, priorityWeight } from '../src/jobs/priority.js';

const item = (id: string) => ({ id });

function picks(queue: FairQueue<{ id: string }>, n: number): string[] {
  return Array.from({ length: n }, () => queue.pick(() => true)!.id);
}

const count = (ids: string[]) => ids.reduce<Record<string, number>>((acc, id) => ({ ...acc, [id]: (acc[id] ?? 0) + 1 }), {});

test('weights: high 4x normal, normal 4x low; the stride is their inverse', () => {
  assert.equal(priorityWeight('high') / priorityWeight('normal'), 4);
  assert.equal(priorityWeight('normal') / priorityWeight('low'), 4);
  assert.equal(priorityWeight(undefined), priorityWeight('normal'));
  assert.deepEqual([priorityStride('high'), priorityStride('normal'), priorityStride('low')], [1, 4, 16]);
});

test('slots are shared 16:4:1 while high, normal and low jobs all have work; low is served within one round', () => {
  const queue = new FairQueue<{ id: string }>();
  queue.add(item('low'), 'low');
  queue.add(item('normal'), 'normal');
  queue.add(item('high'), 'high');
  const first = picks(queue, 21);
  assert.deepEqual(count(first), { low: 1, normal: 4, high: 16 });
  assert.deepEqual(count([...first, ...picks(queue, 21 * 9)]), { low: 10, normal: 40, high: 160 });
});

test('equal priorities take turns in arrival order (round-robin)', () => {
  const queue = new FairQueue<{ id: string }>();
  for (const id of ['a', 'b', 'c']) queue.add(item(id));
  assert.deepEqual(picks(queue, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
});

test('a newcomer starts at the virtual time: no banked credit, no waiting behind the old jobs', () => {
  const queue = new FairQueue<{ id: string }>();
  queue.add(item('old'));
  picks(queue, 50);
  queue.add(item('new'));
  assert.deepEqual(count(picks(queue, 10)), { old: 5, new: 5 });
});

test('an ineligible job banks nothing; setPriority changes the share from the next pick; removed jobs are gone', () => {
  const queue = new FairQueue<{ id: string }>();
  queue.add(item('a'));
  queue.add(item('b'));
  let bBlocked = true;
  for (let i = 0; i < 20; i++) assert.equal(queue.pick((j) => j.id === 'a' || !bBlocked)!.id, 'a');
  bBlocked = false;
  assert.deepEqual(count(picks(queue, 10)), { a: 5, b: 5 }, 'b does not get 20 picks in a row');
  assert.equal(queue.setPriority('b', 'high'), true);
  assert.deepEqual(count(picks(queue, 20)), { a: 4, b: 16 });
  assert.equal(queue.setPriority('nope', 'high'), false);
  queue.remove('b');
  assert.deepEqual(picks(queue, 2), ['a', 'a']);
  assert.equal(queue.size, 1);
});
