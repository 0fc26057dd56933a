/** The one vector rule (src/backends/vectorCheck.ts), and the byte reader never standing in for it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readOllamaEmbed } from '../src/backends/embedJson.js';
import { BackendError } from '../src/backends/errors.js';
import { checkAnswer, toFloat32 } from '../src/backends/vectorCheck.js';

const bytesOf = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

test('element types: null, strings and booleans are refused (they would become 0, NaN and 1)', () => {
  assert.match(String(toFloat32([0.5, null])), /element 1 is null/);
  assert.match(String(toFloat32(['NaN', 1])), /element 0 is the string "NaN"/);
  assert.match(String(toFloat32([1, true])), /element 1 is a boolean/);
  assert.match(String(toFloat32(null)), /null, not a list/);
  assert.match(String(toFloat32([])), /empty/);
  assert.deepEqual(Array.from(toFloat32([0.5, -2]) as Float32Array), [0.5, -2]);
});

test('checkAnswer: non-finite in float32 (1e300, 1e400 parsed as Infinity, NaN), mixed lengths, count, asked dimensions', () => {
  const invalid = (fn: () => void, pattern: RegExp) =>
    assert.throws(fn, (error: unknown) => error instanceof BackendError && error.code === 'INVALID_VECTOR' && pattern.test(error.message));
  invalid(() => checkAnswer('n', [Float32Array.from([1, 1e300])], 1), /element 1 is Infinity/);
  invalid(() => checkAnswer('n', [Float32Array.from([JSON.parse('1e400') as number])], 1), /element 0 is Infinity/);
  invalid(() => checkAnswer('n', [Float32Array.from([Number.NaN])], 1), /element 0 is NaN/);
  invalid(() => checkAnswer('n', [new Float32Array(3), new Float32Array(2)], 2), /different lengths.*3 and 2/);
  invalid(() => checkAnswer('n', [new Float32Array(3)], 2), /1 embeddings for 2 inputs/);
  invalid(() => checkAnswer('n', [new Float32Array(3)], 1, 4), /3-dimensional embeddings where 4 were asked/);
  checkAnswer('n', [new Float32Array(4), new Float32Array(4)], 2, 4);
});

test('the byte reader declines every answer the rule refuses, so the adapters\' JSON.parse path words the error', () => {
  for (const [vector, index] of [[[1, null], 1], [['NaN', 2], 0], [[1, 2, false], 2]] as const) {
    assert.equal(readOllamaEmbed(bytesOf({ embeddings: [[1, 2, 3].slice(0, vector.length), vector] }), 2), undefined);
    assert.match(String(toFloat32(vector)), new RegExp(`element ${index}`));
  }
  assert.equal(readOllamaEmbed(bytesOf({ embeddings: [[1, 2], [1, 2, 3]] }), 2), undefined);
  assert.equal(readOllamaEmbed(bytesOf({ embeddings: [[]] }), 1), undefined);
  const ok = readOllamaEmbed(bytesOf({ embeddings: [[1, 2], [3, 4]] }), 2);
  assert.deepEqual(ok?.vectors.map((v) => Array.from(v)), [[1, 2], [3, 4]]);
  // Not finite in float32: read as Infinity, exactly as JSON.parse + the Float32Array store, for checkAnswer to refuse.
  const huge = readOllamaEmbed(Buffer.from('{"embeddings":[[1e300,1e400,-1e39]]}'), 1);
  assert.deepEqual(huge && Array.from(huge.vectors[0]!), [Infinity, Infinity, -Infinity]);
  assert.throws(() => checkAnswer('n', huge!.vectors, 1), /element 0 is Infinity/);
});
