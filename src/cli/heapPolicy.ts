/**
 * The JavaScript heap's growth policy of a long-running process (`sollol up`, `sollol worker`):
 * docs/ARCHITECTURE.md, "Garbage collection". V8 (Node 20) counts the ArrayBuffer bytes
 * allocated since the last full collection against the old generation's limit, but sizes that
 * limit from the heap's own promotion rate only. The gateway allocates ~20 KB of short-lived
 * ArrayBuffers per 768-dim document (socket reads, each answer's bytes, its Float32Array) and
 * promotes little, so after a while V8 sets the limit to the live heap + ~24 MB (growing
 * factor 1.1) and a full collection follows every ~8 MB of answers: 28 full collections per
 * 10,000-document job against none on a fresh process (whose startup left a factor of 4).
 * A fixed factor of 3 keeps the limit far enough above the live heap that answers in flight
 * rarely reach it (factor 2 still left 20 full collections in 200,000 documents, 3 left 5); it
 * lets the heap reach three live heaps before a full collection, below the 4 a fresh process has.
 */
import v8 from 'node:v8';

/** Old-generation limit = live heap x (1 + this / 100), whatever V8 measured. */
export const HEAP_GROWING_PERCENT = 200;

const FLAG = /--heap[-_]growing[-_]percent/;

/**
 * Applies HEAP_GROWING_PERCENT unless the operator chose a value (node flag or NODE_OPTIONS).
 * V8 reads the flag each time it recomputes the limit, so setting it at startup is enough.
 * Returns the value in force, or undefined when the operator's own is kept.
 */
export function applyHeapPolicy(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): number | undefined {
  if (execArgv.some((arg) => FLAG.test(arg)) || FLAG.test(nodeOptions)) return undefined;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return HEAP_GROWING_PERCENT;
}
