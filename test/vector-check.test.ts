/** The one vector rule (src/backends/vectorCheck.ts), and both parsers applying it alike. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmbedParseError, embedParser } from '../src/backends/embedParser.js';
import { BackendError } from '../src/backends/errors.js';
import { checkAnswer, toFloat32 } from '../src/backends/vectorCheck.js';

const bytesOf = (value: unknown): ArrayBuffer => {
  const b = Buffer.from(JSON.stringify(value));
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
};

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

test('the parser worker applies the same element rule, with the same words', async () => {
  for (const [vector, index] of [[[1, null], 1], [['NaN', 2], 0], [[1, 2, false], 2]] as const) {
    const inline = toFloat32(vector);
    await assert.rejects(embedParser.parse(bytesOf({ embeddings: [[1, 2, 3].slice(0, vector.length), vector] }), 2), (error: unknown) => {
      assert.ok(error instanceof EmbedParseError && error.failure.kind === 'shape');
      assert.equal(error.failure.kind === 'shape' && error.failure.what, inline);
      assert.match(String(inline), new RegExp(`element ${index}`));
      return true;
    });
  }
  await assert.rejects(embedParser.parse(bytesOf({ embeddings: [[1, 2], [1, 2, 3]] }), 2), (error: unknown) => error instanceof EmbedParseError && error.failure.kind === 'shape' && /different lengths/.test(error.failure.what));
  const ok = await embedParser.parse(bytesOf({ embeddings: [[1, 2], [3, 4]] }), 2);
  assert.deepEqual(ok.vectors.map((v) => Array.from(v)), [[1, 2], [3, 4]]);
});
