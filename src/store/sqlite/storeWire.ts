/**
 * What crosses between the main thread and the store's writer thread (threadedStore.ts,
 * storeThread.ts; docs/ARCHITECTURE.md, "The store's writer thread"): calls, answers, errors
 * (a StoreError keeps its class and code) and chunk outcomes, whose vectors travel packed in
 * one buffer: their own when the outcome hands them over (ChunkOutcome.handOver), else a copy
 * (the caller's arrays are then never detached).
 */
import type { ChunkOutcome } from '../../jobs/model.js';
import type { StoreHealth } from '../types.js';
import { contiguousRun } from '../vectorBlob.js';
import { StoreError, type StoreErrorCode } from '../errors.js';
import type { CachePolicy } from './embeddingCache.js';

export interface ThreadOptions {
  readonly dataDir: string;
  readonly cache: CachePolicy;
  readonly walLimitBytes?: number;
  readonly reserveBytes?: number;
}

export type Target = 'jobs' | 'control';

export interface Call {
  readonly id: number;
  readonly target: Target;
  readonly method: string;
  readonly args: readonly unknown[];
}

export interface WireError {
  readonly store?: StoreErrorCode;
  readonly name: string;
  readonly message: string;
  readonly code?: string;
  readonly stack?: string;
}

/** From the thread: an answer, a log line, the store opened (or not), its health changed. */
export type Reply =
  | { readonly id: number; readonly value?: unknown; readonly error?: WireError; readonly health?: StoreHealth }
  | { readonly log: string }
  | { readonly opened: true; readonly file: string; readonly health: StoreHealth }
  | { readonly openError: WireError }
  | { readonly closed: true };

export function toWire(error: unknown): WireError {
  if (error instanceof StoreError) return { store: error.code, name: error.name, message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, ...(typeof code === 'string' ? { code } : {}), ...(error.stack ? { stack: error.stack } : {}) };
  }
  return { name: 'Error', message: String(error) };
}

export function fromWire(wire: WireError): Error {
  const error = wire.store ? new StoreError(wire.store, wire.message) : Object.assign(new Error(wire.message), wire.code === undefined ? {} : { code: wire.code });
  if (!wire.store) error.name = wire.name;
  if (wire.stack) error.stack = wire.stack;
  return error;
}

/**
 * A chunk outcome with every vector in one Float32Array (transferred), and where each one is:
 * the buffer the vectors already fill, in order and alone, when the outcome hands them over
 * (a node's answer as the byte reader stores it, embedJson.ts), else a copy.
 */
export interface PackedOutcome {
  readonly packed: true;
  readonly index: Int32Array;
  readonly length: Int32Array;
  readonly truncated: Uint8Array;
  readonly floats: Float32Array;
  readonly failed: ChunkOutcome['failed'];
}

export function packOutcome(outcome: ChunkOutcome): { packed: PackedOutcome; transfer: ArrayBuffer[] } {
  const n = outcome.done.length;
  const index = new Int32Array(n);
  const length = new Int32Array(n);
  const truncated = new Uint8Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const item = outcome.done[i]!;
    index[i] = item.index;
    length[i] = item.vector.length;
    truncated[i] = item.truncated ? 1 : 0;
    total += item.vector.length;
  }
  let floats = outcome.handOver ? filledBuffer(outcome.done, total) : undefined;
  if (!floats) {
    floats = new Float32Array(total);
    let at = 0;
    for (const item of outcome.done) {
      floats.set(item.vector, at);
      at += item.vector.length;
    }
  }
  const packed = { packed: true as const, index, length, truncated, floats, failed: outcome.failed };
  return { packed, transfer: [index.buffer, length.buffer, truncated.buffer, floats.buffer as ArrayBuffer] };
}

/** The whole buffer of the vectors when they fill it exactly, one after the other in order (contiguousRun). */
function filledBuffer(done: ChunkOutcome['done'], total: number): Float32Array | undefined {
  const run = contiguousRun(done.map((item) => item.vector));
  if (!run || !(run.buffer instanceof ArrayBuffer) || run.byteOffset !== 0 || run.buffer.byteLength !== total * 4) return undefined;
  return new Float32Array(run.buffer);
}

export function unpackOutcome(packed: PackedOutcome): ChunkOutcome {
  let at = 0;
  const done = Array.from(packed.index, (index, i) => {
    const vector = packed.floats.subarray(at, at + packed.length[i]!);
    at += packed.length[i]!;
    return { index, vector, truncated: packed.truncated[i] === 1 };
  });
  return { done, failed: packed.failed };
}

export function isPacked(value: unknown): value is PackedOutcome {
  return typeof value === 'object' && value !== null && (value as { packed?: unknown }).packed === true;
}

/** `pendingDocuments`' answer as it crosses: the indices in one Int32Array, the texts in one array (no object per document). */
export interface PackedDocuments {
  readonly index: Int32Array;
  readonly text: readonly string[];
}

export function packDocuments(docs: readonly { index: number; text: string }[]): PackedDocuments {
  const index = new Int32Array(docs.length);
  const text = new Array<string>(docs.length);
  for (let i = 0; i < docs.length; i++) {
    index[i] = docs[i]!.index;
    text[i] = docs[i]!.text;
  }
  return { index, text };
}

export function unpackDocuments(packed: PackedDocuments): { index: number; text: string }[] {
  const docs = new Array<{ index: number; text: string }>(packed.index.length);
  for (let i = 0; i < docs.length; i++) docs[i] = { index: packed.index[i]!, text: packed.text[i]! };
  return docs;
}
