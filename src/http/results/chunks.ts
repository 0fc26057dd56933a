/**
 * Output bytes for the results writers. Every piece of the results is ASCII (vector digits,
 * base64, and JSON strings with non-ASCII characters escaped), so a piece's length is its
 * byte count: the pieces are written straight into one Buffer of about `target` bytes,
 * handed to the socket as is, and float vectors are formatted into it directly (no string
 * per vector). No large intermediate string is built (no join, no UTF-8 conversion by the
 * stream), so four downloads at once leave little garbage for the GC.
 */
import { float32ArrayJsonMaxBytes, writeFloat32ArrayJson } from '../../util/float32Json.js';

/** Bytes per chunk handed to the stream: large enough for few writes, small enough to stay bounded. */
export const CHUNK_TARGET_BYTES = 1 << 20;

/**
 * Room past the target in each chunk's buffer, so that the piece that crosses the target
 * (at most one item: a 4,096-float vector is under 100 KB of JSON) still fits without a copy.
 */
const SLACK_BYTES = 128 << 10;

const NON_ASCII = /[^\x00-\x7f]/;
const NON_ASCII_ALL = /[^\x00-\x7f]/g;

/** JSON.stringify of a string, with every non-ASCII character written as a \u escape. */
export function jsonString(value: string): string {
  const json = JSON.stringify(value);
  if (!NON_ASCII.test(json)) return json;
  return json.replace(NON_ASCII_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class AsciiChunks {
  private buf: Buffer;
  private pos = 0;

  constructor(private readonly target = CHUNK_TARGET_BYTES) {
    this.buf = Buffer.allocUnsafeSlow(target + SLACK_BYTES);
  }

  /** Adds an ASCII piece (callers guarantee it: numbers, base64, {@link jsonString}). */
  add(text: string): void {
    this.reserve(text.length);
    this.pos += this.buf.write(text, this.pos, 'latin1');
  }

  /** Adds a vector as its JSON array, written straight into the output bytes (no string). */
  addFloat32Json(vector: Float32Array): void {
    this.reserve(float32ArrayJsonMaxBytes(vector.length));
    this.pos = writeFloat32ArrayJson(vector, this.buf, this.pos);
  }

  get full(): boolean {
    return this.pos >= this.target;
  }

  /** The bytes added since the last take, as one Buffer (empty when there were none). */
  take(): Buffer {
    const taken = this.buf.subarray(0, this.pos);
    // The stream keeps the taken bytes until the socket has them: the next ones go to a new buffer.
    this.buf = Buffer.allocUnsafeSlow(this.target + SLACK_BYTES);
    this.pos = 0;
    return taken;
  }

  /** Room for `bytes` more; a piece larger than the slack left grows the buffer once. */
  private reserve(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.pos + bytes));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}
