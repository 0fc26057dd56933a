/**
 * Benchmark for `src/util/float32Json.ts`: JSON text for 10,000 embeddings x 768 dims
 * (7.68 million float32 values, uniform in (-0.1, 0.1), seeded), one JSON array per vector,
 * as an embedding response would be streamed.
 *
 * Compared against the obvious alternatives:
 *  - `toPrecision` p = 6..9 until `Math.fround(+s) === x` (short but slow, not shortest
 *    below 6 digits);
 *  - `toPrecision(8)`, falling back to 9 digits (round-trips, not shortest);
 *  - `String(x)` (shortest form of the *double*, usually 16-17 digits).
 *
 * Run directly with `node --import tsx bench/float32Json.ts` to print a table. To compare
 * with another build of the formatter in the same run, give its file:
 * `git show main:src/util/float32Json.ts > /tmp/old.ts && node --import tsx bench/float32Json.ts /tmp/old.ts`
 * (the baseline's rows are marked `(baseline)`; the methods alternate, best of each).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { seededUnit } from '../src/util/mulberry32.js';
import { float32ArrayToJson, formatFloat32, writeFloat32ArrayJson } from '../src/util/float32Json.js';

const VECTORS = 10_000;
const DIMS = 768;
/** Timed passes per method; the fastest is reported (the machine is shared and noisy). */
const REPEATS = 3;


function makeVectors(): Float32Array[] {
  const random = seededUnit(0xf1a7);
  const vectors: Float32Array[] = [];
  for (let i = 0; i < VECTORS; i++) {
    const v = new Float32Array(DIMS);
    for (let j = 0; j < DIMS; j++) v[j] = (random() * 2 - 1) * 0.1;
    vectors.push(v);
  }
  return vectors;
}

/** Baseline 1: shortest of 6..9 significant digits by trial. */
function precisionSearch(x: number): string {
  for (let p = 6; p < 9; p++) {
    const s = x.toPrecision(p);
    if (Math.fround(+s) === x) return s;
  }
  return x.toPrecision(9);
}

/** Baseline 2: 8 digits, 9 when 8 do not read back. */
function precision8or9(x: number): string {
  const s = x.toPrecision(8);
  return Math.fround(+s) === x ? s : x.toPrecision(9);
}

/** Baseline 3: the double's shortest form. */
function doubleString(x: number): string {
  return String(x);
}

/** JSON array from a per-float formatter, built the straightforward way. */
function joinWith(format: (x: number) => string): (v: Float32Array) => string {
  return (v) => {
    let s = '[';
    for (let i = 0; i < v.length; i++) {
      if (i !== 0) s += ',';
      s += format(v[i]!);
    }
    return s + ']';
  };
}

/** Writes each vector into one reused output buffer, as the results writers do (no string). */
function intoBuffer(name: string, write: (v: Float32Array, buf: Uint8Array, pos: number) => number): Method {
  const out = Buffer.allocUnsafe(1 << 20);
  return {
    name,
    toJson: (v) => out.toString('latin1', 0, write(v, out, 0)), // for the read-back check only
    bytes: (v) => write(v, out, 0),
  };
}

interface Method {
  name: string;
  toJson: (v: Float32Array) => string;
  /** Bytes of the JSON, without building a string (the timed passes use it when given). */
  bytes?: (v: Float32Array) => number;
}

const METHODS: Method[] = [
  { name: 'toPrecision(6..9) search', toJson: joinWith(precisionSearch) },
  { name: 'toPrecision(8), else 9', toJson: joinWith(precision8or9) },
  { name: 'String(x)', toJson: joinWith(doubleString) },
  { name: 'formatFloat32 + concat', toJson: joinWith(formatFloat32) },
  { name: 'float32ArrayToJson', toJson: float32ArrayToJson },
];

/** One full pass; returns the total JSON length (also keeps the work observable). */
function pass(method: Method, vectors: Float32Array[]): number {
  let bytes = 0;
  if (method.bytes) for (const v of vectors) bytes += method.bytes(v);
  else for (const v of vectors) bytes += method.toJson(v).length;
  return bytes;
}

/**
 * Times every method on the same 7.68M floats (best of {@link REPEATS} passes after a warm-up)
 * and checks that each one's output reads back to the input floats.
 *
 * @returns one row per method: CPU milliseconds (user + system, this process) for all vectors and total JSON bytes.
 */
export async function benchFloat32Json(baseline?: string): Promise<{ name: string; ms: number; bytes: number }[]> {
  const vectors = makeVectors();
  const rows: { name: string; ms: number; bytes: number }[] = [];
  let methods = [...METHODS];
  if (baseline !== undefined) {
    // Only the array writers, current and baseline alternating three times, so a change of
    // load on a shared machine hits both alike.
    const old = (await import(pathToFileURL(path.resolve(baseline)).href)) as typeof import('../src/util/float32Json.js');
    const cur = intoBuffer('writeFloat32ArrayJson', writeFloat32ArrayJson);
    const base = intoBuffer('writeFloat32ArrayJson (baseline)', old.writeFloat32ArrayJson);
    methods = [cur, base, cur, base, cur, base];
  }
  for (const method of methods) {
    // Sanity: every method must produce JSON that reads back to the same floats.
    for (const v of vectors.slice(0, 50)) {
      const parsed = JSON.parse(method.toJson(v)) as number[];
      for (let i = 0; i < v.length; i++) {
        if (Math.fround(parsed[i]!) !== v[i]) throw new Error(`${method.name}: ${v[i]} does not read back`);
      }
    }
    pass(method, vectors.slice(0, 1000)); // warm-up (JIT)
    let best = Infinity;
    let bytes = 0;
    for (let r = 0; r < REPEATS; r++) {
      // CPU time of this process rather than wall-clock: the machine is shared.
      const start = process.cpuUsage();
      bytes = pass(method, vectors);
      const used = process.cpuUsage(start);
      best = Math.min(best, (used.user + used.system) / 1000);
      await new Promise((resolve) => setImmediate(resolve)); // let GC and I/O breathe
    }
    rows.push({ name: method.name, ms: Math.round(best), bytes });
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchFloat32Json(process.argv[2]);
  const floats = VECTORS * DIMS;
  const base = rows.find((r) => r.name === 'String(x)') ?? rows[0]!;
  console.log(`${VECTORS} vectors x ${DIMS} dims = ${(floats / 1e6).toFixed(2)}M floats in (-0.1, 0.1), CPU ms, best of ${REPEATS}`);
  console.log(`${'method'.padEnd(28)}${'ms'.padStart(8)}${'ns/float'.padStart(10)}${'MB'.padStart(9)}${'size vs String'.padStart(16)}`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(28)}${String(r.ms).padStart(8)}${((r.ms * 1e6) / floats).toFixed(1).padStart(10)}` +
        `${(r.bytes / 1e6).toFixed(1).padStart(9)}${`${((100 * r.bytes) / base.bytes).toFixed(0)}%`.padStart(16)}`,
    );
  }
}
