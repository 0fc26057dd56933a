/**
 * Reads embedding answers straight from their bytes: Ollama's `/api/embed`
 * (`{"embeddings":[[...],...],"prompt_eval_count":N,...}`) and an OpenAI-compatible
 * `/v1/embeddings` with float vectors (`{"data":[{"index":0,"embedding":[...]},...],"usage":{...}}`).
 * Every number goes from the bytes into one Float32Array holding all the answer's vectors; no
 * string, no JS array of doubles is built. For a 64 x 768 answer (half a megabyte) that costs a
 * fraction of `JSON.parse` plus the copy into float32 (bench: `npm run bench -- parse`).
 *
 * It is a fast path, never a second rule: it returns a result only for an answer it has read
 * completely as well-formed JSON (strict RFC 8259 grammar, whitespace, strings with their
 * escapes, any nesting in the fields it does not use) whose vectors are all present, of one
 * non-zero length, with exactly `expected` of them. Anything else (not JSON, a `null` or a
 * string among the numbers, another count, an empty vector, duplicate keys it uses, a key
 * written with escapes, deep nesting) returns `undefined`, and the adapter parses the
 * text with `JSON.parse` as before, which gives the error it always gave (vectorCheck.ts).
 * Finiteness is not checked here: `1e300` reads as Infinity in float32, exactly as storing
 * `JSON.parse`'s value into a Float32Array does, and the pool's `checkAnswer` refuses it.
 *
 * Numbers convert exactly like `Math.fround(JSON.parse(text))`: to the nearest double, then
 * to float32 (two roundings, like JSON.parse followed by the store into a Float32Array). The
 * nearest double is computed by Clinger's fast path when it is exact: at most 15 significant
 * digits (an integer below 2^53) and a decimal exponent within +-22 (10^k exact), where one
 * IEEE multiplication or division is correctly rounded. Other numbers (more digits, larger
 * exponents) are converted by `Number()` on their text, which V8 rounds like JSON.parse.
 * Ollama and the simulated node print float32 shortest forms (at most 9 digits), so the fast
 * path is the common case. Property tests: test/embed-json.test.ts.
 *
 * Hand-written rather than a library: a streaming JSON tokenizer would still hand every number
 * over as a JS value (or a string), which is the cost this module exists to avoid.
 */

/** Exact powers of ten 10^0..10^22 (all exactly representable as doubles). */
const POW10 = new Float64Array(23);
for (let i = 0, p = 1; i < 23; i++, p *= 10) POW10[i] = p;

/** Deeper nesting in an unused field is left to JSON.parse. */
const MAX_DEPTH = 64;

/** The first vector is read here until its length is known; longer vectors go to JSON.parse. */
const SCRATCH_ELEMENTS = 1 << 16;
let scratch: Float32Array | undefined;

// Results of the helpers below, in module variables so the hot loops allocate nothing.
/** Value of the number {@link readNumber} read last. */
let num = 0;
/** Elements {@link readVector} read last. */
let count = 0;

function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 13 || c === 9;
}

function ws(u8: Uint8Array, p: number, end: number): number {
  while (p < end && isWs(u8[p]!)) p++;
  return p;
}

/**
 * 3 when the bytes start with a UTF-8 byte order mark, else 0. It is skipped, as TextDecoder
 * and undici's `body.text()` skip it: {@link answerText} gives the fallback the same text.
 */
export function bomLength(u8: Uint8Array): number {
  return u8.length >= 3 && u8[0] === 0xef && u8[1] === 0xbb && u8[2] === 0xbf ? 3 : 0;
}

/** The answer as text for JSON.parse, decoded like undici's `body.text()` (UTF-8, a leading BOM skipped). */
export function answerText(u8: Uint8Array): string {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength).toString('utf8', bomLength(u8));
}

/** The number's text, for the rare ones the fast conversion cannot do exactly. */
function latin1(u8: Uint8Array, from: number, to: number): string {
  return Buffer.from(u8.buffer, u8.byteOffset + from, to - from).toString('latin1');
}

/**
 * Reads a JSON number at `p` (strict grammar: `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`) into
 * {@link num} as the double JSON.parse gives; returns the position after it, or -1. What
 * follows is the caller's to check (so `01` fails there: `0` and then a digit).
 */
function readNumber(u8: Uint8Array, p: number, end: number): number {
  const start = p;
  let c = p < end ? u8[p]! : 0;
  const neg = c === 45;
  if (neg) {
    p++;
    c = p < end ? u8[p]! : 0;
  }
  let w = 0;
  let exp = 0;
  if (c === 48) {
    p++;
  } else if (c >= 49 && c <= 57) {
    w = c - 48;
    p++;
    while (p < end) {
      const d = u8[p]! - 48;
      if (d < 0 || d > 9) break;
      w = w * 10 + d;
      p++;
    }
  } else {
    return -1;
  }
  if (p < end && u8[p] === 46) {
    p++;
    const first = p;
    while (p < end) {
      const d = u8[p]! - 48;
      if (d < 0 || d > 9) break;
      w = w * 10 + d;
      exp--;
      p++;
    }
    if (p === first) return -1;
  }
  if (p < end && (u8[p]! | 32) === 101) {
    p++;
    c = p < end ? u8[p]! : 0;
    const expNeg = c === 45;
    if (expNeg || c === 43) p++;
    const first = p;
    let e = 0;
    while (p < end) {
      const d = u8[p]! - 48;
      if (d < 0 || d > 9) break;
      if (e < 100_000) e = e * 10 + d;
      p++;
    }
    if (p === first) return -1;
    exp += expNeg ? -e : e;
  }
  if (w === 0) {
    num = neg ? -0 : 0;
  } else if (w < EXACT && exp >= -22 && exp <= 22) {
    // Clinger: w < 2^53 and 10^|exp| are exact doubles; one rounding. (w is computed exactly
    // while below 2^53, and a true value at or above it computes to at least 2^53.)
    const v = exp < 0 ? w / POW10[-exp]! : w * POW10[exp]!;
    num = neg ? -v : v;
  } else {
    num = Number(latin1(u8, start, p));
  }
  return p;
}

/** Skips a string at `p` (its opening quote), checking escapes and control characters; returns the position after it, or -1. */
function skipString(u8: Uint8Array, p: number, end: number): number {
  p++;
  while (p < end) {
    const c = u8[p]!;
    if (c === 34) return p + 1;
    if (c === 92) {
      const e = p + 1 < end ? u8[p + 1]! : 0;
      if (e === 34 || e === 92 || e === 47 || e === 98 || e === 102 || e === 110 || e === 114 || e === 116) {
        p += 2;
      } else if (e === 117) {
        if (p + 6 > end) return -1;
        for (let i = p + 2; i < p + 6; i++) {
          const h = u8[i]!;
          if (!((h >= 48 && h <= 57) || (h >= 65 && h <= 70) || (h >= 97 && h <= 102))) return -1;
        }
        p += 6;
      } else {
        return -1;
      }
    } else if (c < 32) {
      return -1;
    } else {
      // Bytes >= 0x80 are UTF-8 (or, invalid, U+FFFD once decoded): inside a string either is valid JSON.
      p++;
    }
  }
  return -1;
}

function skipLiteral(u8: Uint8Array, p: number, end: number, word: Uint8Array): number {
  if (p + word.length > end) return -1;
  for (let i = 0; i < word.length; i++) if (u8[p + i] !== word[i]) return -1;
  return p + word.length;
}

const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');

/** Skips any JSON value at `p` (no whitespace before it); returns the position after it, or -1. */
function skipValue(u8: Uint8Array, p: number, end: number, depth: number): number {
  const c = p < end ? u8[p]! : 0;
  if (c === 34) return skipString(u8, p, end);
  if (c === 45 || (c >= 48 && c <= 57)) return readNumber(u8, p, end);
  if (c === 116) return skipLiteral(u8, p, end, TRUE);
  if (c === 102) return skipLiteral(u8, p, end, FALSE);
  if (c === 110) return skipLiteral(u8, p, end, NULL);
  if (c !== 123 && c !== 91) return -1;
  if (depth >= MAX_DEPTH) return -1;
  const object = c === 123;
  const close = object ? 125 : 93;
  p = ws(u8, p + 1, end);
  if (p < end && u8[p] === close) return p + 1;
  for (;;) {
    if (object) {
      if (p >= end || u8[p] !== 34) return -1;
      p = skipString(u8, p, end);
      if (p < 0) return -1;
      p = ws(u8, p, end);
      if (p >= end || u8[p] !== 58) return -1;
      p = ws(u8, p + 1, end);
    }
    p = skipValue(u8, p, end, depth + 1);
    if (p < 0) return -1;
    p = ws(u8, p, end);
    if (p >= end) return -1;
    if (u8[p] === 44) {
      p = ws(u8, p + 1, end);
    } else if (u8[p] === close) {
      return p + 1;
    } else {
      return -1;
    }
  }
}

/**
 * The four ASCII digits in a little-endian 32-bit word (first digit in the low byte), `v` being
 * the word minus 0x30303030: their value (SWAR: pairs, then the two pairs).
 */
function digits4(v: number): number {
  v = (Math.imul(v, 10) + (v >>> 8)) & 0x00ff00ff;
  return (Math.imul(v & 0xffff, 100) + (v >>> 16)) | 0;
}

/** 2^53: below it, integer arithmetic on doubles is exact. */
const EXACT = 9007199254740992;

/**
 * Reads a JSON array of numbers at `p` (its `[`) into `out` from `offset`, at most `max`
 * elements; returns the position after its `]` and sets {@link count}, or -1 (an element
 * that is not a number, more than `max`, bad syntax).
 *
 * The element loop reads the common shape inline (`-?\d+(\.\d+)?`, the fraction four digits
 * per load); a number with an exponent or more digits than an exact double holds is read
 * again from its start by {@link readNumber}.
 */
function readVector(u8: Uint8Array, dv: DataView, p: number, end: number, out: Float32Array | Float64Array, offset: number, max: number): number {
  p = ws(u8, p + 1, end);
  if (p < end && u8[p] === 93) {
    count = 0;
    return p + 1;
  }
  let k = 0;
  for (;;) {
    if (k === max || p >= end) return -1;
    let c = u8[p]!;
    if (c === 32 || c === 10 || c === 13 || c === 9) {
      p = ws(u8, p, end);
      if (p >= end) return -1;
      c = u8[p]!;
    }
    const start = p;
    const neg = c === 45;
    if (neg) {
      p++;
      c = p < end ? u8[p]! : 0;
    }
    let w = 0;
    if (c === 48) {
      p++; // a digit after it is refused below: JSON has no leading zeros
    } else if (c >= 49 && c <= 57) {
      w = c - 48;
      p++;
      while (p < end) {
        const d = u8[p]! - 48;
        if (d < 0 || d > 9) break;
        w = w * 10 + d;
        p++;
      }
    } else {
      return -1;
    }
    let exp = 0;
    if (p < end && u8[p] === 46) {
      p++;
      const first = p;
      for (;;) {
        if (p + 4 > end) {
          while (p < end) {
            const d = u8[p]! - 48;
            if (d < 0 || d > 9) break;
            w = w * 10 + d;
            p++;
          }
          break;
        }
        // Each byte minus '0': a byte is a digit iff it stays below 10 (no high bit after
        // adding 0x76). Bytes after the first non-digit may be garbled by the borrow; unused.
        const v = (dv.getUint32(p, true) - 0x30303030) | 0;
        const m = (v | (v + 0x76767676)) & 0x80808080;
        if (m === 0) {
          w = w * 10000 + digits4(v);
          p += 4;
          continue;
        }
        const n = (31 - Math.clz32(m & -m)) >>> 3; // digits before the first non-digit
        if (n !== 0) {
          w = w * POW10[n]! + digits4(v << (32 - 8 * n));
          p += n;
        }
        break;
      }
      if (p === first) return -1;
      exp = first - p;
    }
    if (w === 0) {
      // 0, -0, 0.000: exact whatever follows, unless an exponent does (then re-read)
      if (p < end && (u8[p]! | 32) === 101) {
        p = readNumber(u8, start, end);
        if (p < 0) return -1;
        out[offset + k] = num;
      } else {
        out[offset + k] = neg ? -0 : 0;
      }
    } else if (w < EXACT && exp >= -22 && (p >= end || (u8[p]! | 32) !== 101)) {
      // Clinger: w and 10^-exp are exact doubles, the quotient rounds once.
      const x = exp === 0 ? w : w / POW10[-exp]!;
      out[offset + k] = neg ? -x : x;
    } else {
      p = readNumber(u8, start, end);
      if (p < 0) return -1;
      out[offset + k] = num;
    }
    k++;
    if (p >= end) return -1;
    c = u8[p]!;
    if (c === 44) {
      p++; // whitespace before the next number is skipped at the top of the loop
      continue;
    }
    if (c !== 93 && isWs(c)) {
      p = ws(u8, p, end);
      if (p >= end) return -1;
      c = u8[p]!;
      if (c === 44) {
        p++;
        continue;
      }
    }
    if (c !== 93) return -1;
    count = k;
    return p + 1;
  }
}

/** Key codes of the fields the readers use; {@link OTHER} for the rest, {@link ESCAPED} for a key with escapes. */
const OTHER = 0;
const ESCAPED = -1;

function keyCode(u8: Uint8Array, from: number, to: number, keys: readonly Uint8Array[]): number {
  const length = to - from;
  for (let i = from; i < to; i++) if (u8[i] === 92) return ESCAPED;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    if (key.length !== length) continue;
    let same = true;
    for (let i = 0; i < length && same; i++) same = u8[from + i] === key[i];
    if (same) return k + 1;
  }
  return OTHER;
}

/**
 * Walks the members of the object at `p` (its `{`), calling `member(code, p)` with the
 * value's position for each; `member` returns the position after the value, or -1. Returns
 * the position after the `}`, or -1.
 */
function readObject(u8: Uint8Array, p: number, end: number, keys: readonly Uint8Array[], member: (code: number, p: number) => number): number {
  if (p >= end || u8[p] !== 123) return -1;
  p = ws(u8, p + 1, end);
  if (p < end && u8[p] === 125) return p + 1;
  for (;;) {
    if (p >= end || u8[p] !== 34) return -1;
    const keyEnd = skipString(u8, p, end);
    if (keyEnd < 0) return -1;
    const code = keyCode(u8, p + 1, keyEnd - 1, keys);
    if (code === ESCAPED) return -1;
    p = ws(u8, keyEnd, end);
    if (p >= end || u8[p] !== 58) return -1;
    p = ws(u8, p + 1, end);
    p = code === OTHER ? skipValue(u8, p, end, 1) : member(code, p);
    if (p < 0) return -1;
    p = ws(u8, p, end);
    if (p >= end) return -1;
    if (u8[p] === 44) {
      p = ws(u8, p + 1, end);
    } else if (u8[p] === 125) {
      return p + 1;
    } else {
      return -1;
    }
  }
}

/** Reads a field whose value JSON.parse would give as a number or something else: the number, or undefined. */
function numberOrUndefined(u8: Uint8Array, p: number, end: number): { p: number; value: number | undefined } {
  const c = p < end ? u8[p]! : 0;
  if (c === 45 || (c >= 48 && c <= 57)) {
    const after = readNumber(u8, p, end);
    return { p: after, value: num };
  }
  return { p: skipValue(u8, p, end, 1), value: undefined };
}

/**
 * The vectors of an answer: element `i * dims` on, `dims` long, one buffer. Reading the
 * first vector fixes `dims` and sizes the buffer for `expected` vectors.
 */
class VectorSink {
  dims = 0;
  all: Float32Array | undefined;
  read = 0;
  private view: DataView | undefined;

  constructor(private readonly expected: number) {}

  private dv(u8: Uint8Array): DataView {
    return (this.view ??= new DataView(u8.buffer, u8.byteOffset, u8.byteLength));
  }

  /** Reads the vector at `p` as the next one; returns the position after it, or -1. */
  next(u8: Uint8Array, p: number, end: number): number {
    if (p >= end || u8[p] !== 91 || this.read >= this.expected) return -1;
    if (this.all === undefined) {
      scratch ??= new Float32Array(SCRATCH_ELEMENTS);
      p = readVector(u8, this.dv(u8), p, end, scratch, 0, SCRATCH_ELEMENTS);
      if (p < 0 || count === 0) return -1;
      // Each further number takes at least two bytes: an answer too short for them is incomplete.
      if ((this.expected - 1) * count * 2 > end - p) return -1;
      this.dims = count;
      this.all = new Float32Array(this.expected * count);
      this.all.set(scratch.subarray(0, count));
    } else {
      p = readVector(u8, this.dv(u8), p, end, this.all, this.read * this.dims, this.dims);
      if (p < 0 || count !== this.dims) return -1;
    }
    this.read++;
    return p;
  }

  /** Vector `i` (read in position `i`). */
  vector(i: number): Float32Array {
    return this.all!.subarray(i * this.dims, (i + 1) * this.dims);
  }
}

/**
 * The doubles the element loop computes before the float32 store, for tests only (the readers
 * store into Float32Arrays, whose rounding would hide most errors of the double): the numbers
 * of the JSON array `text`, or undefined where the element loop declines it.
 */
export function vectorDoublesForTest(u8: Uint8Array): Float64Array | undefined {
  const out = new Float64Array(u8.length);
  const p = readVector(u8, new DataView(u8.buffer, u8.byteOffset, u8.byteLength), 0, u8.length, out, 0, out.length);
  return p === u8.length ? out.slice(0, count) : undefined;
}

export interface OllamaEmbedAnswer {
  readonly vectors: Float32Array[];
  /** `prompt_eval_count` when it is a number (JSON.parse's value), else undefined. */
  readonly promptEvalCount: number | undefined;
  /** `load_duration` when it is a number, else undefined. */
  readonly loadDuration: number | undefined;
}

const OLLAMA_KEYS = ['embeddings', 'prompt_eval_count', 'load_duration'].map((k) => Buffer.from(k));

/**
 * An Ollama `/api/embed` answer of `expected` vectors read from its bytes, or undefined when
 * this fast path does not vouch for it (then parse the text with JSON.parse; see the module doc).
 */
export function readOllamaEmbed(u8: Uint8Array, expected: number): OllamaEmbedAnswer | undefined {
  if (expected <= 0) return undefined;
  const end = u8.length;
  const sink = new VectorSink(expected);
  let seen = false;
  let promptEvalCount: number | undefined;
  let loadDuration: number | undefined;
  const p = readObject(u8, ws(u8, bomLength(u8), end), end, OLLAMA_KEYS, (code, at) => {
    if (code === 1) {
      if (seen) return -1; // a repeated key: JSON.parse keeps the last, leave that to it
      seen = true;
      return readVectorList(u8, at, end, (q) => sink.next(u8, q, end));
    }
    const field = numberOrUndefined(u8, at, end);
    if (code === 2) promptEvalCount = field.value;
    else loadDuration = field.value;
    return field.p;
  });
  if (p < 0 || ws(u8, p, end) !== end || sink.read !== expected) return undefined;
  const vectors = new Array<Float32Array>(expected);
  for (let i = 0; i < expected; i++) vectors[i] = sink.vector(i);
  return { vectors, promptEvalCount, loadDuration };
}

/** Reads a non-empty JSON array at `p` calling `item(p)` for each element; returns the position after it, or -1. */
function readVectorList(u8: Uint8Array, p: number, end: number, item: (p: number) => number): number {
  if (p >= end || u8[p] !== 91) return -1;
  p = ws(u8, p + 1, end);
  for (;;) {
    p = item(p);
    if (p < 0) return -1;
    p = ws(u8, p, end);
    if (p >= end) return -1;
    if (u8[p] === 44) {
      p = ws(u8, p + 1, end);
    } else if (u8[p] === 93) {
      return p + 1;
    } else {
      return -1;
    }
  }
}

export interface OpenAIEmbedAnswer {
  /** In `index` order (an item without a numeric integer `index` stands at its position). */
  readonly vectors: Float32Array[];
  /** `usage.prompt_tokens` when it is a number, else undefined. */
  readonly promptTokens: number | undefined;
}

const OPENAI_KEYS = ['data', 'usage'].map((k) => Buffer.from(k));
const ITEM_KEYS = ['embedding', 'index'].map((k) => Buffer.from(k));
const USAGE_KEYS = ['prompt_tokens'].map((k) => Buffer.from(k));

/**
 * An OpenAI-compatible `/v1/embeddings` answer with float vectors, read from its bytes, or
 * undefined when this fast path does not vouch for it (base64 vectors, bad or repeated indices,
 * and everything the module doc lists go to JSON.parse).
 */
export function readOpenAIEmbed(u8: Uint8Array, expected: number): OpenAIEmbedAnswer | undefined {
  if (expected <= 0) return undefined;
  const end = u8.length;
  const sink = new VectorSink(expected);
  const slots = new Int32Array(expected).fill(-1); // slots[index] = position read
  let seen = false;
  let promptTokens: number | undefined;
  const item = (p: number): number => {
    const position = sink.read;
    let index: number | undefined;
    let embedding = false;
    p = readObject(u8, p, end, ITEM_KEYS, (code, at) => {
      if (code === 1) {
        if (embedding) return -1;
        embedding = true;
        return sink.next(u8, at, end);
      }
      const field = numberOrUndefined(u8, at, end);
      index = field.value;
      return field.p;
    });
    if (p < 0 || !embedding) return -1;
    const at = index !== undefined && Number.isInteger(index) ? index : position;
    if (at < 0 || at >= expected || slots[at] !== -1) return -1;
    slots[at] = position;
    return p;
  };
  const p = readObject(u8, ws(u8, bomLength(u8), end), end, OPENAI_KEYS, (code, at) => {
    if (code === 1) {
      if (seen) return -1;
      seen = true;
      return readVectorList(u8, at, end, item);
    }
    promptTokens = undefined; // the last `usage` counts, and one that is not an object has no prompt_tokens
    if (at < end && u8[at] === 123) {
      return readObject(u8, at, end, USAGE_KEYS, (_code, q) => {
        const field = numberOrUndefined(u8, q, end);
        promptTokens = field.value;
        return field.p;
      });
    }
    return skipValue(u8, at, end, 1);
  });
  if (p < 0 || ws(u8, p, end) !== end || sink.read !== expected) return undefined;
  const vectors = new Array<Float32Array>(expected);
  for (let i = 0; i < expected; i++) vectors[i] = sink.vector(slots[i]!);
  return { vectors, promptTokens };
}
