/** The parser thread for large /api/embed answers: exact float32 vectors, and clear failures. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EmbedParseError, embedParser } from '../src/backends/embedParser.js';

const bytesOf = (value: unknown): ArrayBuffer => {
  const encoded = new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
  return encoded.buffer.slice(encoded.byteOffset, encoded.byteOffset + encoded.byteLength) as ArrayBuffer;
};

test('vectors come back as float32, in order, with the usage fields', async () => {
  const embeddings = [
    [0.1, -0.25, 3],
    [1e-7, 0, -1],
  ];
  const parsed = await embedParser.parse(bytesOf({ model: 'm', embeddings, prompt_eval_count: 12, load_duration: 5 }), 2);
  assert.deepEqual(parsed.vectors.map((v) => Array.from(v)), embeddings.map((v) => v.map(Math.fround)));
  assert.equal(parsed.promptEvalCount, 12);
  assert.equal(parsed.loadDuration, 5);
});

test('not JSON, the wrong number of vectors, and vectors that are not lists of numbers are refused', async () => {
  const failureOf = async (bytes: ArrayBuffer, expected: number): Promise<string> => {
    try {
      await embedParser.parse(bytes, expected);
      return 'parsed';
    } catch (error) {
      assert.ok(error instanceof EmbedParseError);
      return error.failure.kind;
    }
  };
  assert.equal(await failureOf(bytesOf('{"embeddings": [[1,'), 1), 'json');
  assert.equal(await failureOf(bytesOf({ embeddings: [[1, 2]] }), 2), 'count');
  assert.equal(await failureOf(bytesOf({ error: 'x' }), 1), 'count');
  assert.equal(await failureOf(bytesOf({ embeddings: [[1, 2], [3]] }), 2), 'shape');
  assert.equal(await failureOf(bytesOf({ embeddings: [[]] }), 1), 'shape');
});
