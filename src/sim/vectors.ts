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
import { hashPair, seededRandom } from './random.js';

const TWO_POW_31 = 2 ** 31;


/**
 * A base vector and its components printed as JSON, each followed by a comma, as
 * little-endian 32-bit words: form k (k < dims: component k; k >= dims: component
 * k - dims negated) is `length[k]` ASCII bytes in words `k * slot` onwards, padded. An
 * arrangement's JSON is `[` then its forms, with the last comma turned into `]`; each
 * form is copied as whole words (the padding is overwritten by the next form).
 */
interface Base {
  readonly values: Float32Array;
  readonly words: Uint32Array;
  /**
   * With 4-word slots, the same bytes as 8-byte doubles, copied by two stores a form. As
   * doubles the bytes stay exact: ASCII or zero padding in each top byte keeps the exponent
   * below all ones, so none is a NaN (whose bits a move may change), and any other double
   * keeps its bits with its value. Checked all the same when the base is made.
   */
  readonly pairs: Float64Array | undefined;
  readonly length: Uint8Array;
  /** Words per form: at least 4 (16 bytes, what ~10-character forms need). */
  readonly slot: number;
  /** The longest JSON an arrangement can print (brackets included). */
  readonly maxJsonBytes: number;
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
  const forms = [...Array.from(values, (value) => `${formatFloat32(value)},`), ...Array.from(values, (value) => `${formatFloat32(-value)},`)];
  const slot = Math.max(4, Math.ceil(forms.reduce((longest, form) => Math.max(longest, form.length), 0) / 4));
  const padded = Buffer.alloc(forms.length * slot * 4);
  const length = new Uint8Array(forms.length);
  forms.forEach((form, k) => {
    padded.write(form, k * slot * 4, 'latin1');
    length[k] = form.length;
  });
  const words = new Uint32Array(forms.length * slot);
  for (let w = 0; w < words.length; w++) words[w] = padded.readUInt32LE(4 * w);
  let pairs: Float64Array | undefined;
  if (slot === 4) {
    pairs = new Float64Array(words.length / 2);
    const check = Buffer.alloc(padded.length);
    const view = new DataView(check.buffer, check.byteOffset, check.length);
    for (let d = 0; d < pairs.length; d++) {
      pairs[d] = padded.readDoubleLE(8 * d);
      view.setFloat64(8 * d, pairs[d] as number, true);
    }
    if (!check.equals(padded)) pairs = undefined;
  }
  // Brackets replace the first form's nothing and the last form's comma: 1 + sum of forms.
  let maxJsonBytes = 1;
  for (let i = 0; i < dims; i++) maxJsonBytes += Math.max(length[i] ?? 0, length[dims + i] ?? 0);
  return { values, words, pairs, length, slot, maxJsonBytes };
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
 * The room writing one `dims`-dimension vector's JSON needs (see writeSimVectorJson):
 * its longest JSON plus one slot, as the last form is copied as whole words.
 */
export function simVectorJsonRoom(dims: number): number {
  const base = baseFor(dims);
  return base.maxJsonBytes + 4 * base.slot;
}

/**
 * Scratch for {@link arrange}, reused by every call (all synchronous): `order[i]` is the
 * base component at position i, negated where bit i of `negate` (32 per word) is set.
 */
let order = new Uint32Array(1024);
let negate = new Uint32Array(32);

/**
 * The arrangement of the base for the text hashing to (h1, h2): Fisher-Yates from
 * `seededRandom(h1, h2)`, then one word of sign bits per 32 positions, drawn in that
 * order (about one draw per component). The generator (sfc32, see random.ts) is written
 * out inline rather than called through its closure per draw; `simVector` and the JSON
 * writer share this one function, so they cannot disagree.
 */
function arrange(h1: number, h2: number, dims: number): void {
  if (order.length < dims) {
    order = new Uint32Array(dims);
    negate = new Uint32Array(Math.ceil(dims / 32));
  }
  // seededRandom(h1, h2): sfc32(h1, h2, h1 ^ 0x9e3779b9, h2 ^ 0x85ebca6b), 12 draws dropped.
  let s0 = h1 | 0;
  let s1 = h2 | 0;
  let s2 = (h1 ^ 0x9e3779b9) | 0;
  let s3 = (h2 ^ 0x85ebca6b) | 0;
  let t = 0;
  for (let k = 0; k < 12; k++) {
    t = (((s0 + s1) | 0) + s3) | 0;
    s3 = (s3 + 1) | 0;
    s0 = s1 ^ (s1 >>> 9);
    s1 = (s2 + (s2 << 3)) | 0;
    s2 = (s2 << 21) | (s2 >>> 11);
    s2 = (s2 + t) | 0;
  }
  const o = order;
  for (let i = 0; i < dims; i++) o[i] = i;
  for (let i = dims - 1; i > 0; i--) {
    t = (((s0 + s1) | 0) + s3) | 0;
    s3 = (s3 + 1) | 0;
    s0 = s1 ^ (s1 >>> 9);
    s1 = (s2 + (s2 << 3)) | 0;
    s2 = (s2 << 21) | (s2 >>> 11);
    s2 = (s2 + t) | 0;
    // (t >>> 0) % (i + 1), which V8 computes as a float remainder (a library call, half of
    // this function's time). Exact: u / n rounds to below floor + 1 because n * (floor + 1)
    // stays far under 2^52, and the product and difference are exact integers.
    const u = t >>> 0;
    const n = i + 1;
    const j = u - Math.floor(u / n) * n;
    const swap = o[i] as number;
    o[i] = o[j] as number;
    o[j] = swap;
  }
  const words = Math.ceil(dims / 32);
  for (let w = 0; w < words; w++) {
    t = (((s0 + s1) | 0) + s3) | 0;
    s3 = (s3 + 1) | 0;
    s0 = s1 ^ (s1 >>> 9);
    s1 = (s2 + (s2 << 3)) | 0;
    s2 = (s2 << 21) | (s2 >>> 11);
    s2 = (s2 + t) | 0;
    negate[w] = t;
  }
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
  arrange(h1, h2, dims);
  const vector = new Float32Array(dims);
  for (let i = 0; i < dims; i++) {
    const value = base.values[order[i] ?? 0] ?? 0;
    vector[i] = ((negate[i >>> 5] ?? 0) >>> (i & 31)) & 1 ? -value : value;
  }
  return vector;
}

/**
 * Writes the JSON of the vector `simVector` gives for the text hashing to (h1, h2) into
 * `view` at `pos`, which must have {@link simVectorJsonRoom} bytes of room; returns the
 * position after it (bytes past it up to the room are clobbered). No string, no Buffer
 * per vector: each ~10-byte form goes as two 8-byte stores (or its slot's word stores),
 * cheaper than a byte loop or a native copy's call.
 */
export function writeSimVectorJson(h1: number, h2: number, dims: number, view: DataView, pos: number): number {
  const { words, pairs, length, slot } = baseFor(dims);
  if (dims === 0) {
    view.setUint16(pos, 0x5d5b, true); // []
    return pos + 2;
  }
  arrange(h1, h2, dims);
  const o = order;
  const signs = negate;
  view.setUint8(pos, 0x5b); // [
  let p = pos + 1;
  if (pairs !== undefined) {
    for (let i = 0; i < dims; i++) {
      const k = (o[i] as number) + ((((signs[i >>> 5] as number) >>> (i & 31)) & 1) * dims);
      const d = k << 1;
      view.setFloat64(p, pairs[d] as number, true);
      view.setFloat64(p + 8, pairs[d + 1] as number, true);
      p += length[k] as number;
    }
  } else {
    for (let i = 0; i < dims; i++) {
      const k = (o[i] as number) + ((((signs[i >>> 5] as number) >>> (i & 31)) & 1) * dims);
      const w = k * slot;
      for (let q = 0; q < slot; q++) view.setUint32(p + 4 * q, words[w + q] as number, true);
      p += length[k] as number;
    }
  }
  view.setUint8(p - 1, 0x5d); // ] over the last comma
  return p;
}

/** Answer buffers whose send has finished, for the next answers (see JsonBytes.release). */
const spareBuffers: Buffer[] = [];
const MAX_SPARE_BUFFERS = 8;
/** Larger answers (thousands of documents in one call) give their buffer back to the GC. */
const MAX_SPARE_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * A JSON answer being assembled as bytes in one buffer, grown when a piece would not
 * fit, so that it goes to the socket as one write with no list of pieces. Buffers are
 * reused once sent: a fresh one for every answer of a few hundred KiB is memory the
 * kernel hands over (and zeroes) page by page, which cost more than writing it.
 */
export class JsonBytes {
  #buf: Buffer;
  #view: DataView;
  #pos = 0;

  /** `reuse`: may take a spare buffer (false for a result kept or dropped rather than released). */
  constructor(capacity: number, reuse = true) {
    const index = reuse ? spareBuffers.findIndex((spare) => spare.length >= capacity) : -1;
    this.#buf = index >= 0 ? (spareBuffers.splice(index, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(Math.max(64, capacity));
    this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.length);
  }

  get length(): number {
    return this.#pos;
  }

  /** Makes room for `n` more bytes past {@link length}. */
  reserve(n: number): void {
    const need = this.#pos + n;
    if (need > this.#buf.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, 2 * this.#buf.length));
      this.#buf.copy(grown, 0, 0, this.#pos);
      this.#buf = grown;
      this.#view = new DataView(grown.buffer, grown.byteOffset, grown.length);
    }
  }

  /** The buffer, for writing past {@link length} within what {@link reserve} made room for. */
  get buffer(): Buffer {
    return this.#buf;
  }

  /** The same bytes as {@link buffer}, for word stores. */
  get view(): DataView {
    return this.#view;
  }

  /** Marks the bytes up to `pos` (written past {@link length}) as part of the answer. */
  advanceTo(pos: number): void {
    this.#pos = pos;
  }

  byte(value: number): void {
    this.reserve(1);
    this.#buf[this.#pos++] = value;
  }

  bytes(piece: Uint8Array): void {
    this.reserve(piece.length);
    this.#buf.set(piece, this.#pos);
    this.#pos += piece.length;
  }

  /** Appends `text` encoded as UTF-8 (JSON text may hold any character). */
  text(text: string): void {
    this.reserve(3 * text.length);
    this.#pos += this.#buf.write(text, this.#pos, 'utf8');
  }

  /** The answer so far (a view of the buffer, not a copy). */
  result(): Buffer {
    return this.#buf.subarray(0, this.#pos);
  }

  /**
   * Hands the buffer over for another answer: only once nothing reads {@link result}
   * any more (the socket has taken all of it). This object must not be used after.
   */
  release(): void {
    if (spareBuffers.length < MAX_SPARE_BUFFERS && this.#buf.length <= MAX_SPARE_BUFFER_BYTES) spareBuffers.push(this.#buf);
  }
}

/** A block of cache memory holding entries back to back; `live` counts their bytes. */
interface Slab {
  readonly bytes: Buffer;
  live: number;
}

/**
 * One cached vector's JSON: `length` bytes of `slab` from `offset`, or, until the text
 * comes a second time, no bytes (`slab` undefined): only the length is accounted.
 */
interface Entry {
  readonly slab: Slab | undefined;
  readonly offset: number;
  readonly length: number;
}

function unstored(length: number): Entry {
  return { slab: undefined, offset: 0, length };
}

/** Cache memory is taken in blocks of this size (or of the budget, when smaller). */
const SLAB_BYTES = 1024 * 1024;
const MAX_SPARE_SLABS = 2;

/**
 * Serialised vectors by (model key, dims, text), bounded by total bytes, least
 * recently used evicted first, so repeated texts cost one Map lookup and a copy. A byte
 * budget rather than an entry count because entry size grows with dimensions (~10 bytes
 * each). `bytes`, `hits`, `misses`, `size` and what is evicted when are those of a cache
 * keeping every entry's bytes; but an entry's bytes are kept only from its second call on.
 * A text met once is only its key and length: its vector is rebuilt (from the base, a few
 * microseconds) the next time, then kept. With unique texts, as in a benchmark, keeping
 * them was most of the node's CPU (fresh memory page by page, then freeing it), for no hit.
 * Kept bytes are copies in shared 1 MiB blocks (a block of memory per entry cost more
 * than building the vector). A block is freed once all its entries are evicted; when
 * evictions leave blocks mostly empty (hot texts keeping old blocks alive), so that blocks
 * hold over 1.5 times the kept bytes plus two blocks, the entries are copied together into
 * fresh blocks.
 */
export class VectorJsonCache {
  readonly #entries = new Map<string, Entry>();
  /** A small number per (model key, dims), the first character of an entry's key. */
  readonly #ids = new Map<string, number>();
  #lastModel = '';
  #lastDims = -1;
  #lastId = 0;
  #capacityBytes: number;
  #bytes = 0;
  /** Bytes of the entries whose bytes are kept (at most `bytes`). */
  #storedBytes = 0;
  /** The block new entries go to, and how much of it is taken. */
  #slab: Slab | undefined;
  #slabUsed = 0;
  /** Bytes of the blocks still held: those with live entries, and the current one. */
  #slabBytes = 0;
  /** Emptied blocks, for reuse. */
  readonly #spareSlabs: Slab[] = [];
  /** Where eviction is in the Map's order: the next entry it gives is the oldest. */
  #oldest: MapIterator<[string, Entry]> | undefined;
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

  /** Bytes of the entries whose vectors are kept (those seen at least twice). */
  get storedBytes(): number {
    return this.#storedBytes;
  }

  /** Bytes of memory the kept entries' blocks take (at least `storedBytes`). */
  get heldBytes(): number {
    return this.#slabBytes;
  }

  resize(capacityBytes: number): void {
    this.#capacityBytes = capacityBytes;
    this.#evict();
  }

  /** JSON of the vector for `text` (ASCII bytes); `modelKey` must already be canonical. */
  json(modelKey: string, text: string, dims: number): Buffer {
    const out = new JsonBytes(simVectorJsonRoom(dims), false);
    this.write(modelKey, text, dims, out);
    return out.result();
  }

  /** Appends to `out` what {@link json} gives, without a Buffer of its own. */
  write(modelKey: string, text: string, dims: number, out: JsonBytes): void {
    // Keyed by the 64-bit hash rather than the text: long texts would otherwise be
    // kept alive as keys, and the hash is the whole seed anyway (equal hash, equal vector).
    // Five UTF-16 units: (model key, dims) id, then the hash in 16-bit halves.
    const [h1, h2] = hashPair(modelKey, text);
    const cacheKey = String.fromCharCode(this.#idOf(modelKey, dims), h1 >>> 16, h1 & 0xffff, h2 >>> 16, h2 & 0xffff);
    const cached = this.#entries.get(cacheKey);
    if (cached !== undefined) {
      this.hits++;
      // Re-insert so Map order tracks recency: eviction takes the oldest first.
      this.#entries.delete(cacheKey);
      const slab = cached.slab;
      if (slab !== undefined) {
        this.#entries.set(cacheKey, cached);
        out.reserve(cached.length);
        slab.bytes.copy(out.buffer, out.length, cached.offset, cached.offset + cached.length);
        out.advanceTo(out.length + cached.length);
        return;
      }
      // Its second call: built again, and kept from now on.
      const from = out.length;
      const end = this.#build(h1, h2, dims, out);
      this.#entries.set(cacheKey, this.#store(out.buffer, from, end - from));
      this.#storedBytes += end - from;
      this.#compactIfSparse();
      return;
    }
    this.misses++;
    const from = out.length;
    const length = this.#build(h1, h2, dims, out) - from;
    if (length <= this.#capacityBytes) {
      this.#entries.set(cacheKey, unstored(length));
      this.#bytes += length;
      this.#evict();
    }
  }

  /** Writes the vector's JSON at the end of `out`; returns where it ends. */
  #build(h1: number, h2: number, dims: number, out: JsonBytes): number {
    out.reserve(simVectorJsonRoom(dims));
    const end = writeSimVectorJson(h1, h2, dims, out.view, out.length);
    out.advanceTo(end);
    return end;
  }

  /** A copy of `length` bytes of `source` from `offset`, in the current block. */
  #store(source: Buffer, offset: number, length: number): Entry {
    let slab = this.#slab;
    if (slab === undefined || this.#slabUsed + length > slab.bytes.length) {
      const previous = slab;
      const size = Math.max(length, Math.min(SLAB_BYTES, this.#capacityBytes));
      const spare = this.#spareSlabs.pop();
      // An emptied block of the usual size is taken again: fresh memory is handed over
      // (and zeroed) by the kernel page by page, which cost more than filling it.
      slab = spare !== undefined && spare.bytes.length === size ? spare : { bytes: Buffer.allocUnsafeSlow(size), live: 0 };
      this.#slab = slab;
      this.#slabUsed = 0;
      this.#slabBytes += size;
      if (previous !== undefined && previous.live === 0) this.#retire(previous);
    }
    const at = this.#slabUsed;
    source.copy(slab.bytes, at, offset, offset + length);
    this.#slabUsed = at + length;
    slab.live += length;
    return { slab, offset: at, length };
  }

  /** Forgets an entry's bytes; its block goes once none are left (unless it is the current one). */
  #release(entry: Entry): void {
    const slab = entry.slab;
    if (slab === undefined) return;
    this.#storedBytes -= entry.length;
    slab.live -= entry.length;
    if (slab.live === 0 && slab !== this.#slab) this.#retire(slab);
  }

  /** A block with no entry left: kept (a few) for the next block needed. */
  #retire(slab: Slab): void {
    this.#slabBytes -= slab.bytes.length;
    if (this.#spareSlabs.length < MAX_SPARE_SLABS) this.#spareSlabs.push(slab);
  }

  /** The most bytes the blocks may take for what is kept (see the class comment). */
  get heldLimit(): number {
    return 1.5 * this.#storedBytes + 2 * Math.min(SLAB_BYTES, this.#capacityBytes);
  }

  #compactIfSparse(): void {
    if (this.#slabBytes <= this.heldLimit) return;
    // Waste above half of the kept bytes builds up only from as many bytes of evictions,
    // so the copying costs at most a few bytes per byte kept.
    this.#slab = undefined;
    this.#slabUsed = 0;
    this.#slabBytes = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.slab !== undefined) this.#entries.set(key, this.#store(entry.slab.bytes, entry.offset, entry.length));
    }
  }

  #idOf(modelKey: string, dims: number): number {
    if (modelKey === this.#lastModel && dims === this.#lastDims) return this.#lastId;
    const idKey = `${dims}:${modelKey}`;
    let id = this.#ids.get(idKey);
    if (id === undefined) {
      if (this.#ids.size > 0xffff) {
        // Ids fit one UTF-16 unit: past 65,536 (model, dims) pairs, start over.
        this.#ids.clear();
        this.#entries.clear();
        this.#oldest = undefined;
        this.#bytes = 0;
        this.#storedBytes = 0;
        this.#slab = undefined;
        this.#slabUsed = 0;
        this.#slabBytes = 0;
      }
      id = this.#ids.size;
      this.#ids.set(idKey, id);
    }
    this.#lastModel = modelKey;
    this.#lastDims = dims;
    this.#lastId = id;
    return id;
  }

  #evict(): void {
    while (this.#bytes > this.#capacityBytes) {
      // One iterator kept across calls: a fresh one would walk past every entry deleted
      // since the Map last compacted its table, growing with the number of evictions.
      let oldest = (this.#oldest ??= this.#entries.entries()).next();
      if (oldest.done) {
        // A finished iterator stays finished, even once entries are added behind it.
        this.#oldest = this.#entries.entries();
        oldest = this.#oldest.next();
        if (oldest.done) return;
      }
      this.#entries.delete(oldest.value[0]);
      this.#bytes -= oldest.value[1].length;
      this.#release(oldest.value[1]);
    }
    this.#compactIfSparse();
  }
}
