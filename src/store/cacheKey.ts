/**
 * The content cache's key: identical (model, text, options that change the vector) give
 * the same key. `x` and `x:latest` are one model; keep_alive does not change a vector.
 */
import { hash } from 'node:crypto';
import { canonicalModel } from '../backends/modelNames.js';
import type { EmbedOptions } from '../backends/types.js';

export function cacheKeyPrefix(model: string, options: EmbedOptions): string {
  return `${canonicalModel(model)}\u0000${options.truncate ? 1 : 0}\u0000${options.dimensions ?? ''}\u0000`;
}

/** SHA-256 of prefix + text (the same bytes as before); the one-shot `crypto.hash` skips the Hash object: 1.0-1.3 vs 1.4-2.0 us per short text, measured. */
export function cacheKey(prefix: string, text: string): Buffer {
  return hash('sha256', prefix + text, 'buffer');
}
