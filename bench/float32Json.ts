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
 * Run directly with `node --import tsx bench/float32Json.ts` to print a table.
 */
import { pathToFileURL } from 'node:url';
import { seededUnit } from '../src/util/mulberry32.js';
import { float32ArrayToJson, formatFloat32 } from '../src/util/float32Json.js';

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

interface Method {
  name: string;
  toJson: (v: Float32Array) => string;
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
  for (const v of vectors) bytes += method.toJson(v).length;
  return bytes;
}

/**
 * Times every method on the same 7.68M floats (best of {@link REPEATS} passes after a warm-up)
 * and checks that each one's output reads back to the input floats.
 *
 * @returns one row per method: wall-clock milliseconds for all vectors and total JSON bytes.
 */
export async function benchFloat32Json(): Promise<{ name: string; ms: number; bytes: number }[]> {
  const vectors = makeVectors();
  const rows: { name: string; ms: number; bytes: number }[] = [];
  for (const method of METHODS) {
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
      const start = performance.now();
      bytes = pass(method, vectors);
      best = Math.min(best, performance.now() - start);
      await new Promise((resolve) => setImmediate(resolve)); // let GC and I/O breathe
    }
    rows.push({ name: method.name, ms: Math.round(best), bytes });
  }
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchFloat32Json();
  const floats = VECTORS * DIMS;
  const base = rows.find((r) => r.name === 'String(x)')!;
  console.log(`${VECTORS} vectors x ${DIMS} dims = ${(floats / 1e6).toFixed(2)}M floats in (-0.1, 0.1), best of ${REPEATS}`);
  console.log(`${'method'.padEnd(28)}${'ms'.padStart(8)}${'ns/float'.padStart(10)}${'MB'.padStart(9)}${'size vs String'.padStart(16)}`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(28)}${String(r.ms).padStart(8)}${((r.ms * 1e6) / floats).toFixed(1).padStart(10)}` +
        `${(r.bytes / 1e6).toFixed(1).padStart(9)}${`${((100 * r.bytes) / base.bytes).toFixed(0)}%`.padStart(16)}`,
    );
  }
}
