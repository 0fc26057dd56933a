/**
 * The heap growth policy of `sollol up` / `sollol worker` (src/cli/heapPolicy.ts): V8's limit after a
 * full collection uses the fixed factor, read from V8's own trace in a child process (a forced
 * collection, so no timing is involved), and an operator's own choice is left alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { HEAP_GROWING_PERCENT, applyHeapPolicy } from '../src/cli/heapPolicy.js';

const FACTOR = (1 + HEAP_GROWING_PERCENT / 100).toFixed(1);

function limitsAfterGc(script: string, flags: string[] = []): string[] {
  const child = spawnSync(process.execPath, ['--expose-gc', '--trace-gc-verbose', ...flags, '--import', 'tsx', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(child.status, 0, child.stderr);
  // "[HeapController] Limit: old size: 5276 KB, new limit: 15481 KB (2.0)": the factor applied.
  return [...child.stdout.matchAll(/\[HeapController\] Limit: old size: \d+ KB, new limit: \d+ KB \(([\d.]+)\)/g)].map((m) => m[1]!);
}

test('after applyHeapPolicy, a full collection sets the old-generation limit with the fixed factor', () => {
  const factors = limitsAfterGc(`import { applyHeapPolicy } from './src/cli/heapPolicy.ts'; applyHeapPolicy(); globalThis.gc(); globalThis.gc();`);
  assert.ok(factors.length >= 2, `no limit recomputed: ${factors.join(',')}`);
  // The last two are the forced collections, after the policy was applied.
  assert.deepEqual(factors.slice(-2), [FACTOR, FACTOR]);
});

test("an operator's own --heap-growing-percent (node flag or NODE_OPTIONS) is kept", () => {
  assert.equal(applyHeapPolicy(['--heap-growing-percent=50'], ''), undefined);
  assert.equal(applyHeapPolicy([], '--max-old-space-size=512 --heap_growing_percent=30'), undefined);
  const factors = limitsAfterGc(`import { applyHeapPolicy } from './src/cli/heapPolicy.ts'; applyHeapPolicy(); globalThis.gc();`, ['--heap-growing-percent=50']);
  assert.equal(factors.at(-1), '1.5');
});
