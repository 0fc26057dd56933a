/**
 * The content cache's key: identical (model, text, options that change the vector) give
 * the same key. `x` and `x:latest` are one model; keep_alive does not change a vector.
 */
import { hash } from 'node:crypto';
import { canonicalModel } from '../backends/modelNames.js';
import type { EmbedOptions } from '../backends/types.js';

/** Bytes in a key (SHA-256). */
export const CACHE_KEY_BYTES = 32;

export function cacheKeyPrefix(model: string, options: EmbedOptions): string {
  return `${canonicalModel(model)}\u0000${options.truncate ? 1 : 0}\u0000${options.dimensions ?? ''}\u0000`;
}

/** SHA-256 of prefix + text (the same bytes as before); the one-shot `crypto.hash` skips the Hash object: 1.0-1.3 vs 1.4-2.0 us per short text, measured. */
export function cacheKey(prefix: string, text: string): Buffer {
  return hash('sha256', prefix + text, 'buffer');
}

/**
 * The keys of many texts, each as a string of 32 latin1 characters, one per byte of
 * `cacheKey(prefix, text)` (`Buffer.from(k, 'latin1')` is that Buffer). For admission: no
 * Buffer is allocated per key, the strings compare and hash as Map keys, and they join into
 * one Buffer of all keys; measured 2.5x cheaper than a Buffer per key (docs/ARCHITECTURE.md,
 * "Admission").
 */
export function cacheKeyStrings(prefix: string, texts: readonly string[]): string[] {
  // 'binary' is Node's name for latin1 here (the typed encodings of crypto.hash).
  return texts.map((text) => hash('sha256', prefix + text, 'binary'));
}
