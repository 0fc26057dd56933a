/**
 * Output bytes for the results writers. Every piece of the results is ASCII (vector digits,
 * base64, and JSON strings with non-ASCII characters escaped), so a piece's length is its
 * byte count: the pieces of about `target` bytes are copied straight into one Buffer and
 * handed to the socket as is. No large intermediate string is built (no join, no UTF-8
 * conversion by the stream), so four downloads at once leave little garbage for the GC.
 */

/** Bytes per chunk handed to the stream: large enough for few writes, small enough to stay bounded. */
export const CHUNK_TARGET_BYTES = 1 << 20;

const NON_ASCII = /[^\x00-\x7f]/;
const NON_ASCII_ALL = /[^\x00-\x7f]/g;

/** JSON.stringify of a string, with every non-ASCII character written as a \u escape. */
export function jsonString(value: string): string {
  const json = JSON.stringify(value);
  if (!NON_ASCII.test(json)) return json;
  return json.replace(NON_ASCII_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class AsciiChunks {
  private parts: string[] = [];
  private length = 0;

  constructor(private readonly target = CHUNK_TARGET_BYTES) {}

  /** Adds an ASCII piece (callers guarantee it: numbers, base64, {@link jsonString}). */
  add(text: string): void {
    this.parts.push(text);
    this.length += text.length;
  }

  get full(): boolean {
    return this.length >= this.target;
  }

  /** The pieces added since the last take, as one Buffer (empty when there were none). */
  take(): Buffer {
    const buffer = Buffer.allocUnsafeSlow(this.length);
    let pos = 0;
    for (const part of this.parts) pos += buffer.write(part, pos, 'latin1');
    this.parts = [];
    this.length = 0;
    return buffer;
  }
}
