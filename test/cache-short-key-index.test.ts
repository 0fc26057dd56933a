/**
 * The content cache's in-memory key index (src/store/sqlite/shortKeyIndex.ts) answers as a Map
 * would through inserts, overwrites, deletes (backward shift) and growth, with keys up to 2^48
 * and keys chosen to collide in their first slot.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShortKeyIndex } from '../src/store/sqlite/shortKeyIndex.js';

/** A small deterministic generator (xorshift), so a failure repeats. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

test('the short-key index agrees with a Map through random inserts, overwrites and deletes', () => {
  const next = random(12);
  const index = new ShortKeyIndex();
  const oracle = new Map<number, number>();
  const keys: number[] = [];
  for (let step = 0; step < 60_000; step++) {
    const roll = next();
    if (roll < 0.55 || keys.length === 0) {
      const key = Math.floor(next() * 2 ** 24) * 2 ** 24 + Math.floor(next() * 2 ** 24);
      index.set(key, step);
      if (!oracle.has(key)) keys.push(key);
      oracle.set(key, step);
    } else if (roll < 0.6) {
      const key = keys[Math.floor(next() * keys.length)]!;
      index.set(key, -step);
      oracle.set(key, -step);
    } else {
      const at = Math.floor(next() * keys.length);
      const key = keys[at]!;
      keys[at] = keys[keys.length - 1]!;
      keys.pop();
      assert.equal(index.delete(key), oracle.delete(key));
      assert.equal(index.delete(key), false);
    }
  }
  assert.equal(index.size, oracle.size);
  for (const [key, value] of oracle) assert.equal(index.get(key), value);
  assert.equal(index.get(2 ** 48 - 1), oracle.get(2 ** 48 - 1));
  assert.equal(index.has(0), oracle.has(0));
});

test('in a table filled to its load bound (long probe runs), deleting any one key leaves every other findable', () => {
  const capacity = new ShortKeyIndex().capacity;
  const all = Array.from({ length: Math.floor(capacity * 0.7) - 2 }, (_, i) => i * 7919);
  all.push(1, 2 ** 48 - 1);
  const fresh = (): ShortKeyIndex => {
    const index = new ShortKeyIndex();
    all.forEach((key, i) => index.set(key, i));
    return index;
  };
  assert.equal(fresh().capacity, capacity, 'no growth: the runs stay as long as the bound allows');
  for (const removed of all) {
    const index = fresh();
    assert.equal(index.delete(removed), true);
    all.forEach((key, i) => assert.equal(index.get(key), key === removed ? undefined : i));
    assert.equal(index.size, all.length - 1);
  }
});

test('a full table of colliding keys (every slot from one home) still answers, through growth', () => {
  const index = new ShortKeyIndex();
  const oracle = new Map<number, number>();
  // 5,000 keys that are multiples of 2^24 share their low half: only the high half spreads them.
  for (let i = 0; i < 5_000; i++) {
    index.set(i * 2 ** 24, i);
    oracle.set(i * 2 ** 24, i);
  }
  for (let i = 0; i < 5_000; i += 3) {
    index.delete(i * 2 ** 24);
    oracle.delete(i * 2 ** 24);
  }
  assert.ok(index.capacity >= 4096);
  assert.equal(index.size, oracle.size);
  for (let i = 0; i < 5_000; i++) assert.equal(index.get(i * 2 ** 24), oracle.get(i * 2 ** 24));
});
