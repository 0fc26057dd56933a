/**
 * The files `sollol embed` and `sollol results` write, appended to in input order:
 *   OUTPUT.jsonl          `{"id", "index", "embedding"}` per embedded document
 *   OUTPUT.npy            a float32 matrix (rows = embedded documents), with OUTPUT.ids.txt
 *   OUTPUT.errors.jsonl   `{"id", "index", "code", "error"}` per failed document
 * Each file's length after the last finished range is kept in the state file; a rerun after
 * a crash truncates the files back to those lengths and appends from there.
 * The .npy header is a fixed 128 bytes, rewritten with the final row count when done.
 */
import fs from 'node:fs/promises';
import { float32ArrayToJson } from '../../util/float32Json.js';

export type OutputFormat = 'jsonl' | 'npy';

export function outputFormatOf(path: string): OutputFormat | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  if (lower.endsWith('.npy')) return 'npy';
  return undefined;
}

/** Where each file stands: what the state file records after every finished range. */
export interface OutputMark {
  outputBytes: number;
  idsBytes: number;
  errorsBytes: number;
  rows: number;
  dimensions: number | null;
}

export const EMPTY_MARK: OutputMark = { outputBytes: 0, idsBytes: 0, errorsBytes: 0, rows: 0, dimensions: null };

const NPY_HEADER_BYTES = 128;
const FLUSH_BYTES = 1 << 20;

export type DocumentId = string | number;

class Appender {
  private parts: Buffer[] = [];
  private pending = 0;
  constructor(private readonly handle: fs.FileHandle, public bytes: number) {}

  add(data: Buffer | string): void {
    const buffer = typeof data === 'string' ? Buffer.from(data) : data;
    this.parts.push(buffer);
    this.pending += buffer.length;
  }

  get full(): boolean {
    return this.pending >= FLUSH_BYTES;
  }

  async flush(): Promise<void> {
    if (this.pending === 0) return;
    const data = Buffer.concat(this.parts, this.pending);
    this.parts = [];
    this.pending = 0;
    await this.handle.write(data, 0, data.length, this.bytes);
    this.bytes += data.length;
  }

  /** Overwrites bytes in place (the .npy header), outside the appended range's accounting. */
  async writeAt(data: Buffer, position: number): Promise<void> {
    await this.handle.write(data, 0, data.length, position);
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle.close();
  }
}

/**
 * A file the state file says holds more than is there: gone, or cut shorter since the last run.
 * Continuing would leave a gap (truncate would fill it with zeros: rows of zeros in a .npy).
 */
export class OutputChangedError extends Error {}

async function openAt(path: string, bytes: number): Promise<fs.FileHandle> {
  if (bytes === 0) {
    const handle = await fs.open(path, 'w');
    await handle.truncate(0);
    return handle;
  }
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, 'r+');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new OutputChangedError(`${path} is missing (the last run wrote ${bytes} bytes to it)`);
    throw error;
  }
  const { size } = await handle.stat();
  if (size < bytes) {
    await handle.close();
    throw new OutputChangedError(`${path} has ${size} bytes, fewer than the ${bytes} the last run wrote to it`);
  }
  await handle.truncate(bytes);
  return handle;
}

export class OutputWriter {
  private constructor(
    readonly format: OutputFormat,
    private readonly out: Appender,
    private readonly ids: Appender | undefined,
    private errors: Appender | undefined,
    readonly errorsPath: string,
    private readonly mark: OutputMark,
  ) {}

  /** Opens the files at `mark` (EMPTY_MARK: new files), cutting off whatever a crash left after it. */
  static async open(path: string, format: OutputFormat, mark: OutputMark): Promise<OutputWriter> {
    const errorsPath = `${path}.errors.jsonl`;
    let outBytes = mark.outputBytes;
    if (format === 'npy' && outBytes === 0) outBytes = NPY_HEADER_BYTES;
    const out = new Appender(await openAt(path, mark.outputBytes), outBytes);
    if (format === 'npy' && mark.outputBytes === 0) await writeNpyHeader(out, 0, 0);
    const ids = format === 'npy' ? new Appender(await openAt(`${path}.ids.txt`, mark.idsBytes), mark.idsBytes) : undefined;
    let errors: Appender | undefined;
    if (mark.errorsBytes > 0) errors = new Appender(await openAt(errorsPath, mark.errorsBytes), mark.errorsBytes);
    else await fs.rm(errorsPath, { force: true });
    return new OutputWriter(format, out, ids, errors, errorsPath, { ...mark, outputBytes: outBytes });
  }

  async addVector(id: DocumentId, index: number, vector: Float32Array): Promise<void> {
    if (this.mark.dimensions === null) this.mark.dimensions = vector.length;
    else if (vector.length !== this.mark.dimensions) throw new Error(`document ${index} came back with ${vector.length} dimensions, the others with ${this.mark.dimensions}`);
    if (this.format === 'jsonl') {
      this.out.add(`{"id":${JSON.stringify(id)},"index":${index},"embedding":`);
      this.out.add(float32ArrayToJson(vector));
      this.out.add('}\n');
    } else {
      this.out.add(Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength));
      this.ids!.add(`${String(id).replace(/[\r\n]/g, ' ')}\n`);
    }
    this.mark.rows++;
    if (this.out.full) await this.out.flush();
  }

  async addError(id: DocumentId, index: number, code: string, error: string): Promise<void> {
    if (!this.errors) this.errors = new Appender(await openAt(this.errorsPath, 0), 0);
    this.errors.add(`${JSON.stringify({ id, index, code, error })}\n`);
  }

  /** Writes everything added so far; the mark returned is what the state file records. */
  async flush(): Promise<OutputMark> {
    await this.out.flush();
    await this.ids?.flush();
    await this.errors?.flush();
    return { ...this.mark, outputBytes: this.out.bytes, idsBytes: this.ids?.bytes ?? 0, errorsBytes: this.errors?.bytes ?? 0 };
  }

  get hasErrors(): boolean {
    return (this.errors?.bytes ?? 0) > 0;
  }

  /** Finishes the files (the .npy header gets its final shape). */
  async close(): Promise<OutputMark> {
    const mark = await this.flush();
    if (this.format === 'npy') await writeNpyHeader(this.out, this.mark.rows, this.mark.dimensions ?? 0);
    await this.out.close();
    await this.ids?.close();
    await this.errors?.close();
    return mark;
  }
}

/** The NPY 1.0 header (magic, version, little-endian length, dict padded with spaces to 128 bytes). */
async function writeNpyHeader(out: Appender, rows: number, dims: number): Promise<void> {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${dims}), }`;
  const header = Buffer.alloc(NPY_HEADER_BYTES, 0x20);
  Buffer.from([0x93]).copy(header, 0);
  header.write('NUMPY', 1, 'latin1');
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(NPY_HEADER_BYTES - 10, 8);
  header.write(dict, 10, 'latin1');
  header[NPY_HEADER_BYTES - 1] = 0x0a;
  await out.writeAt(header, 0);
}
