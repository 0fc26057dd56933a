/**
 * In-process A/B of the simulated node's `/api/embed` answer building: the string-built form
 * it had before (copied below as the baseline: pre-printed component strings joined, one
 * Buffer per vector, a list of Buffers per answer) against src/sim's byte writer, both with
 * their vector cache at the default 256 MiB. Every round embeds DOCS unique texts (new ones
 * each round, so every document is a cache miss, as in a benchmark with unique texts) in calls
 * of BATCH, the two alternated, and checks that both answers are byte-identical for every call.
 * Then the same with every text seen before (all hits). Prints CPU microseconds per document.
 *
 * `node --import tsx bench/simAb.ts [ROUNDS] [DIMS]` (defaults 6, 384); DOCS, BATCH, CACHE_MB
 * (default 256) and ONLY (old, new) from env.
 */
import { formatFloat32 } from '../src/util/float32Json.js';
import { hashPair, seededRandom, type Random32 } from '../src/sim/random.js';
import { JsonBytes, simVectorJsonRoom, VectorJsonCache } from '../src/sim/vectors.js';

const ROUNDS = Number(process.argv[2] ?? 6);
const DIMS = Number(process.argv[3] ?? 384);
const DOCS = Number(process.env['DOCS'] ?? 20_000);
const BATCH = Number(process.env['BATCH'] ?? 64);
const CACHE_BYTES = Number(process.env['CACHE_MB'] ?? 256) * 1024 * 1024;
const MODEL = 'all-minilm:latest';
/** `old` or `new` times only that one: in one process each side's garbage is collected on the other's time. */
const ONLY = process.env['ONLY'];

// ---- Baseline: the string-built answer, as src/sim had it ----

const TWO_POW_31 = 2 ** 31;

interface OldBase {
  readonly positive: readonly string[];
  readonly negative: readonly string[];
}

const oldBases = new Map<number, OldBase>();

function oldBaseFor(dims: number): OldBase {
  let base = oldBases.get(dims);
  if (base) return base;
  const [h1, h2] = hashPair('sollol-sim-base', String(dims));
  const next = seededRandom(h1, h2);
  const raw = new Float64Array(dims);
  let sumSquares = 0;
  for (let i = 0; i < dims; i++) {
    const value = (next() + 0.5) / TWO_POW_31 - 1;
    raw[i] = value;
    sumSquares += value * value;
  }
  const scale = 1 / Math.sqrt(sumSquares);
  const values = new Float32Array(dims);
  for (let i = 0; i < dims; i++) values[i] = (raw[i] ?? 0) * scale;
  base = { positive: Array.from(values, (v) => formatFloat32(v)), negative: Array.from(values, (v) => formatFloat32(-v)) };
  oldBases.set(dims, base);
  return base;
}

function oldArrangement(next: Random32, dims: number): { order: Uint32Array; negate: Uint8Array } {
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

function oldSimVectorJson(h1: number, h2: number, dims: number): Buffer {
  const base = oldBaseFor(dims);
  const { order, negate } = oldArrangement(seededRandom(h1, h2), dims);
  const parts = new Array<string>(dims);
  for (let i = 0; i < dims; i++) {
    const index = order[i] ?? 0;
    parts[i] = (negate[i] ? base.negative[index] : base.positive[index]) ?? '0';
  }
  return Buffer.from(`[${parts.join(',')}]`, 'latin1');
}

class OldCache {
  readonly #entries = new Map<string, Buffer>();
  #bytes = 0;
  hits = 0;
  misses = 0;

  json(modelKey: string, text: string, dims: number): Buffer {
    const [h1, h2] = hashPair(modelKey, text);
    const cacheKey = `${dims}:${h1}:${h2}:${modelKey}`;
    const cached = this.#entries.get(cacheKey);
    if (cached !== undefined) {
      this.hits++;
      this.#entries.delete(cacheKey);
      this.#entries.set(cacheKey, cached);
      return cached;
    }
    this.misses++;
    const json = oldSimVectorJson(h1, h2, dims);
    if (json.length <= CACHE_BYTES) {
      this.#entries.set(cacheKey, json);
      this.#bytes += json.length;
      while (this.#bytes > CACHE_BYTES) {
        const oldest = this.#entries.entries().next();
        if (oldest.done) break;
        this.#entries.delete(oldest.value[0]);
        this.#bytes -= oldest.value[1].length;
      }
    }
    return json;
  }
}

const COMMA = Buffer.from(',');

function oldAnswer(cache: OldCache, texts: readonly string[], tail: string, dims = DIMS): Buffer[] {
  const parts: Buffer[] = [Buffer.from(`{"model":${JSON.stringify(MODEL)},"embeddings":[`)];
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) parts.push(COMMA);
    parts.push(cache.json('all-minilm', texts[i] ?? '', dims));
  }
  parts.push(Buffer.from(tail));
  return parts;
}

// ---- New: as src/sim/embed.ts builds it ----

function newAnswer(cache: VectorJsonCache, texts: readonly string[], tail: string, dims = DIMS): JsonBytes {
  const head = `{"model":${JSON.stringify(MODEL)},"embeddings":[`;
  const out = new JsonBytes(3 * head.length + texts.length * (simVectorJsonRoom(dims) + 1) + 128);
  out.text(head);
  for (let i = 0; i < texts.length; i++) {
    if (i > 0) out.byte(0x2c);
    cache.write('all-minilm', texts[i] ?? '', dims, out);
  }
  out.text(tail);
  return out;
}

// ---- Rounds ----

function cpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

const TAIL = '],"total_duration":123456,"load_duration":789,"prompt_eval_count":640}';
const oldCache = new OldCache();
const newCache = new VectorJsonCache(CACHE_BYTES);

function batches(round: number): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < DOCS; i += BATCH) {
    out.push(Array.from({ length: Math.min(BATCH, DOCS - i) }, (_, k) => `round ${round} document ${i + k} short text`));
  }
  return out;
}

// Answers are dropped (old) or released (new: its buffer goes back for reuse, as once
// sent) as soon as built, as the node does.
function timeOld(calls: string[][]): number {
  const t0 = cpuUs();
  let bytes = 0;
  for (const texts of calls) bytes += oldAnswer(oldCache, texts, TAIL).length;
  return bytes >= 0 ? cpuUs() - t0 : 0;
}

function timeNew(calls: string[][]): number {
  const t0 = cpuUs();
  for (const texts of calls) newAnswer(newCache, texts, TAIL).release();
  return cpuUs() - t0;
}

/** Untimed, on fresh caches (so both build every vector): old and new answers are the same bytes. */
function check(calls: string[][], dims = DIMS): void {
  const oldFresh = new OldCache();
  const newFresh = new VectorJsonCache(CACHE_BYTES);
  calls.forEach((texts, i) => {
    for (let pass = 0; pass < 3; pass++) {
      // Passes 2 and 3 are hits (the new cache rebuilds, then copies).
      const out = newAnswer(newFresh, texts, TAIL, dims);
      if (!Buffer.concat(oldAnswer(oldFresh, texts, TAIL, dims)).equals(out.result())) throw new Error(`answer ${i} (pass ${pass}) differs`);
      out.release();
    }
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

if (process.env['CHECK'] !== '0') {
for (const dims of [1, 3, 179, 384, 768, 1024]) {
  const calls = Array.from({ length: 4 }, (_, c) => Array.from({ length: BATCH }, (_, k) => `check ${dims} ${c}.${k} ${'x'.repeat(k)} \u00e9\u{1f600}`));
  check(calls, dims);
}
check(batches(0));
console.log('old and new answers are byte-identical (dims 1, 3, 179, 384, 768, 1024; new, second-time and kept texts)');
}

for (const mode of ['miss', 'hit'] as const) {
  const oldUs: number[] = [];
  const newUs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Misses: texts never seen; hits: round 0's texts again (in both caches since the miss rounds).
    const calls = batches(mode === 'miss' ? round + 1 : 1);
    const first = round % 2 === 0 ? 'old' : 'new';
    let o = 0;
    let n = 0;
    if (ONLY === 'new') n = timeNew(calls);
    else if (ONLY === 'old') o = timeOld(calls);
    else if (first === 'old') {
      o = timeOld(calls);
      n = timeNew(calls);
    } else {
      n = timeNew(calls);
      o = timeOld(calls);
    }
    oldUs.push(o / DOCS);
    newUs.push(n / DOCS);
    console.log(`${mode} round ${round}: old ${(o / DOCS).toFixed(2)} us/doc, new ${(n / DOCS).toFixed(2)} us/doc`);
  }
  console.log(`${mode} median (${DOCS} docs x ${ROUNDS}, ${DIMS} dims, calls of ${BATCH}): old ${median(oldUs).toFixed(2)} us/doc, new ${median(newUs).toFixed(2)} us/doc; hits old ${oldCache.hits} new ${newCache.hits}, misses old ${oldCache.misses} new ${newCache.misses}`);
}
