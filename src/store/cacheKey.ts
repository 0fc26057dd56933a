/**
 * The content cache's key: identical (model, text, options that change the vector) give
 * the same key. `x` and `x:latest` are one model; keep_alive does not change a vector.
 */
import { createHash } from 'node:crypto';
import { canonicalModel } from '../backends/modelNames.js';
import type { EmbedOptions } from '../backends/types.js';

export function cacheKeyPrefix(model: string, options: EmbedOptions): string {
  return `${canonicalModel(model)}\u0000${options.truncate ? 1 : 0}\u0000${options.dimensions ?? ''}\u0000`;
}

export function cacheKey(prefix: string, text: string): Buffer {
  return createHash('sha256').update(prefix).update(text).digest();
}
