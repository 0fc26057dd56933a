/**
 * The results writers' byte builder: vectors formatted straight into the output buffer must
 * give exactly the text of float32ArrayToJson, wherever in the buffer they land, and a piece
 * larger than the buffer's slack must grow it without losing bytes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AsciiChunks } from '../src/http/results/chunks.js';
import { float32ArrayJsonMaxBytes, float32ArrayToJson, writeFloat32ArrayJson } from '../src/util/float32Json.js';

test('writeFloat32ArrayJson writes the bytes of float32ArrayToJson at any position', () => {
  fc.assert(
    fc.property(fc.float32Array({ maxLength: 64 }), fc.nat(100), (vector, at) => {
      const buf = Buffer.alloc(at + float32ArrayJsonMaxBytes(vector.length));
      const end = writeFloat32ArrayJson(vector, buf, at);
      assert.equal(buf.toString('latin1', at, end), float32ArrayToJson(vector));
    }),
  );
});

test('AsciiChunks keeps every piece in order across takes, pieces larger than a chunk included', () => {
  const chunks = new AsciiChunks(1024);
  const vector = Float32Array.from({ length: 20_000 }, (_, i) => Math.sin(i) / (i + 1));
  const expected: string[] = [];
  const taken: Buffer[] = [];
  for (let round = 0; round < 5; round++) {
    chunks.add(`{"round":${round},"v":`);
    expected.push(`{"round":${round},"v":`);
    chunks.addFloat32Json(round % 2 === 0 ? vector : vector.subarray(0, 3));
    expected.push(float32ArrayToJson(round % 2 === 0 ? vector : vector.subarray(0, 3)));
    chunks.add('"' + 'x'.repeat(300_000) + '"}');
    expected.push('"' + 'x'.repeat(300_000) + '"}');
    if (chunks.full) taken.push(chunks.take());
  }
  taken.push(chunks.take());
  assert.equal(Buffer.concat(taken).toString('latin1'), expected.join(''));
  assert.equal(chunks.take().length, 0);
});
