/**
 * Deterministic embedding vectors for the simulated node.
 *
 * A vector depends only on (canonical model name, text, dimensions), so a test can
 * recompute with {@link simVector} exactly what the node served and compare it with
 * what the gateway returns.
 *
 * Printing 768 arbitrary floats costs ~150 µs, which a benchmark with unique texts
 * would pay per document and charge to the gateway sharing the CPU. So each vector is
 * a text-seeded permutation, with text-seeded signs, of one fixed unit "base" vector
 * per dimension count: its JSON is assembled from the base's pre-printed components,
 * and every vector is exactly as unit-length as the base. Two texts still get
 * unrelated vectors (cosine ~ N(0, 1/dims)), which is all a gateway test can observe.
 */

import { formatFloat32 } from '../util/float32Json.js';
import { canonicalModelName } from './models.js';
import { hashPair, seededRandom, type Random32 } from './random.js';

const TWO_POW_31 = 2 ** 31;


/** A base vector and its components printed with and without a minus sign. */
interface Base {
  readonly values: Float32Array;
  readonly positive: readonly string[];
  readonly negative: readonly string[];
}

/** Bases by dimension count; only a handful of sizes are ever used. */
const bases = new Map<number, Base>();
const MAX_BASES = 64;

function makeBase(dims: number): Base {
  const [h1, h2] = hashPair('sollol-sim-base', String(dims));
  const next = seededRandom(h1, h2);
  const raw = new Float64Array(dims);
  let sumSquares = 0;
  for (let i = 0; i < dims; i++) {
    // The half keeps every component off zero: a negated zero would be -0, which a
    // Float32Array keeps but a JSON round trip does not.
    const value = (next() + 0.5) / TWO_POW_31 - 1;
    raw[i] = value;
    sumSquares += value * value;
  }
  const scale = 1 / Math.sqrt(sumSquares);
  const values = new Float32Array(dims);
  for (let i = 0; i < dims; i++) values[i] = (raw[i] ?? 0) * scale;
  // Printed as Ollama's Go server prints a float32: the shortest decimal that reads back
  // to the same float32 (about 10 characters, not a double's 19), so response sizes and
  // parse costs are those of a real node. Math.fround of the parsed number is exactly
  // simVector(...).
  const positive = Array.from(values, (value) => formatFloat32(value));
  const negative = Array.from(values, (value) => formatFloat32(-value));
  return { values, positive, negative };
}

function baseFor(dims: number): Base {
  let base = bases.get(dims);
  if (!base) {
    if (bases.size >= MAX_BASES) bases.clear();
    base = makeBase(dims);
    bases.set(dims, base);
  }
  return base;
}

/**
 * The text's arrangement of the base: `order[i]` is the base component at position i,
 * negated where `negate` says so. Fisher-Yates from the text-seeded generator.
 */
function arrangement(next: Random32, dims: number): { order: Uint32Array; negate: Uint8Array } {
  const order = new Uint32Array(dims);
  for (let i = 0; i < dims; i++) order[i] = i;
  for (let i = dims - 1; i > 0; i--) {
    const j = next() % (i + 1);
    const swap = order[i] ?? 0;
    order[i] = order[j] ?? 0;
    order[j] = swap;
  }
  const negate = new Uint8Array(dims);
  let bits = 0;
  for (let i = 0; i < dims; i++) {
    if (i % 32 === 0) bits = next();
    negate[i] = (bits >>> i % 32) & 1;
  }
  return { order, negate };
}

/**
 * The unit-length vector the simulated node serves for `text` under `model` with
 * `dims` dimensions (also what it serves when a call asks for `dimensions: dims`).
 * Components are float32 values (Ollama's own type), so a gateway that stores
 * float32 gives back identical numbers. `model` may be given with or without `:latest`.
 */
export function simVector(model: string, text: string, dims: number): Float32Array {
  const base = baseFor(dims);
  const [h1, h2] = hashPair(canonicalModelName(model), text);
  const { order, negate } = arrangement(seededRandom(h1, h2), dims);
  const vector = new Float32Array(dims);
  for (let i = 0; i < dims; i++) {
    const value = base.values[order[i] ?? 0] ?? 0;
    vector[i] = negate[i] ? -value : value;
  }
  return vector;
}

/**
 * JSON of the vector `simVector` gives for the text hashing to (h1, h2), as bytes.
 * Joined from pre-printed components, then copied into one flat Buffer: a cached
 * string built by `+=` would stay a rope of ~1500 nodes, which costs the GC more than
 * building it did, and bytes go to the socket without re-encoding.
 */
function simVectorJson(h1: number, h2: number, dims: number): Buffer {
  const base = baseFor(dims);
  const { order, negate } = arrangement(seededRandom(h1, h2), dims);
  const parts = new Array<string>(dims);
  for (let i = 0; i < dims; i++) {
    const index = order[i] ?? 0;
    parts[i] = (negate[i] ? base.negative[index] : base.positive[index]) ?? '0';
  }
  return Buffer.from(`[${parts.join(',')}]`, 'latin1');
}

/**
 * Serialised vectors by (model key, dims, text), bounded by total bytes, least
 * recently used evicted first, so repeated texts cost one Map lookup. A byte budget
 * rather than an entry count because entry size grows with dimensions (~20 bytes each).
 */
export class VectorJsonCache {
  readonly #entries = new Map<string, Buffer>();
  #capacityBytes: number;
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(capacityBytes: number) {
    this.#capacityBytes = capacityBytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  resize(capacityBytes: number): void {
    this.#capacityBytes = capacityBytes;
    this.#evict();
  }

  /** JSON of the vector for `text` (ASCII bytes); `modelKey` must already be canonical. */
  json(modelKey: string, text: string, dims: number): Buffer {
    // Keyed by the 64-bit hash rather than the text: long texts would otherwise be
    // kept alive as keys, and the hash is the whole seed anyway (equal hash, equal vector).
    const [h1, h2] = hashPair(modelKey, text);
    const cacheKey = `${dims}:${h1}:${h2}:${modelKey}`;
    const cached = this.#entries.get(cacheKey);
    if (cached !== undefined) {
      this.hits++;
      // Re-insert so Map order tracks recency: eviction takes the oldest first.
      this.#entries.delete(cacheKey);
      this.#entries.set(cacheKey, cached);
      return cached;
    }
    this.misses++;
    const json = simVectorJson(h1, h2, dims);
    if (json.length <= this.#capacityBytes) {
      this.#entries.set(cacheKey, json);
      this.#bytes += json.length;
      this.#evict();
    }
    return json;
  }

  #evict(): void {
    while (this.#bytes > this.#capacityBytes) {
      const oldest = this.#entries.entries().next();
      if (oldest.done) return;
      this.#entries.delete(oldest.value[0]);
      this.#bytes -= oldest.value[1].length;
    }
  }
}
