/**
 * The one rule for what a node's answer must be before a vector is used (docs/ARCHITECTURE.md,
 * "What nodes send back"): every element a finite number (not null, a string or a boolean, not
 * Infinity after float32 rounding: `1e300` and `1e400` are refused as well as `"NaN"`), every
 * vector of one answer the same length, and that length equal to `options.dimensions` when the
 * call asked for it. A vector that breaks it fails its documents with `INVALID_VECTOR`: it is
 * never stored, cached or returned, and the node is charged a failure (failureKind.ts).
 *
 * Two steps, each one pass:
 * - {@link jsonToFloat32}, used by the adapters' JSON.parse path, checks element types while
 *   copying into the Float32Array, since `null` and `true` become 0 and 1 there (the byte
 *   reader, embedJson.ts, reads numbers only: any other element makes it decline the answer
 *   to this path);
 * - {@link checkAnswer}, run by the pool on every backend's answer (Ollama, OpenAI-compatible,
 *   embedded), checks finiteness, lengths and count on the Float32Arrays.
 * The length against a job's `dimensions` (fixed by its first recorded vector) is the store's
 * part of the rule, checked where the dimensions are fixed (JobStore.recordChunk).
 */
import { BackendError } from './errors.js';

/**
 * Copies a JSON array of numbers into `out` at `offset`; returns the position of the first
 * element that is not a number (or -1 when all are).
 */
export function jsonToFloat32(list: readonly unknown[], out: Float32Array, offset: number): number {
  const n = list.length;
  for (let i = 0; i < n; i++) {
    const x = list[i];
    if (typeof x !== 'number') return i;
    out[offset + i] = x;
  }
  return -1;
}

/** A JSON vector as a Float32Array, or the reason it is not one (for {@link invalidVector}). */
export function toFloat32(value: unknown): Float32Array | string {
  if (!Array.isArray(value)) return `an embedding that is ${value === null ? 'null' : typeof value}, not a list of numbers`;
  if (value.length === 0) return 'an empty embedding';
  const out = new Float32Array(value.length);
  const bad = jsonToFloat32(value, out, 0);
  return bad < 0 ? out : badElement(value, bad);
}

/** "an embedding whose element 3 is null": the reason for a failed {@link jsonToFloat32}. */
export function badElement(list: readonly unknown[], at: number): string {
  const x = list[at];
  const what = x === null ? 'null' : typeof x === 'string' ? 'the string ' + JSON.stringify(x.slice(0, 20)) : 'a ' + typeof x;
  return 'an embedding whose element ' + at + ' is ' + what;
}

/** The error for a bad answer of `backendId`: `what` completes "returned ...". */
export function invalidVector(backendId: string, what: string): BackendError {
  return new BackendError('INVALID_VECTOR', `Backend ${backendId} returned ${what}`);
}

/** Index of the first element that is NaN or infinite, or -1. One pass, no allocation. */
export function firstNonFinite(v: Float32Array): number {
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    // x - x is 0 for every finite x, NaN for NaN and for both infinities.
    if (x - x !== 0) return i;
  }
  return -1;
}

/**
 * Throws INVALID_VECTOR unless `vectors` is a valid answer to a call of `expected` inputs asking
 * for `dimensions` (when set): that many vectors, one length, finite elements.
 */
export function checkAnswer(backendId: string, vectors: readonly Float32Array[], expected: number, dimensions?: number): void {
  if (vectors.length !== expected) throw invalidVector(backendId, `${vectors.length} embeddings for ${expected} inputs`);
  if (expected === 0) return;
  const length = vectors[0]!.length;
  if (length === 0) throw invalidVector(backendId, 'an empty embedding');
  if (dimensions !== undefined && length !== dimensions) {
    throw invalidVector(backendId, `${length}-dimensional embeddings where ${dimensions} were asked for`);
  }
  for (let i = 0; i < vectors.length; i++) {
    const v = vectors[i]!;
    if (v.length !== length) throw invalidVector(backendId, `embeddings of different lengths in one answer (${length} and ${v.length})`);
    const bad = firstNonFinite(v);
    if (bad >= 0) throw invalidVector(backendId, `an embedding whose element ${bad} is ${v[bad]} in float32 (not a finite number)`);
  }
}
