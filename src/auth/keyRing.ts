/**
 * Matching a presented key against the configured ones in constant time: the presented key
 * is hashed (so every comparison is between two 32-byte digests, whatever its length), and
 * it is compared with every configured hash, without stopping at the first match, so the
 * time taken tells nothing about which key matched or how much of one did.
 */
import { timingSafeEqual } from 'node:crypto';
import { sha256, type ApiKey } from './keys.js';

/** Equal contents, compared in time independent of where they differ; unequal lengths are simply unequal. */
export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

export class KeyRing {
  private readonly keys: readonly ApiKey[];

  constructor(keys: readonly ApiKey[]) {
    this.keys = keys;
  }

  get size(): number {
    return this.keys.length;
  }

  /** The configured key equal to `presented`, or undefined. */
  match(presented: string): ApiKey | undefined {
    const digest = sha256(presented);
    let found: ApiKey | undefined;
    for (const key of this.keys) {
      // No early exit: every key is compared, whichever matches.
      if (constantTimeEqual(digest, key.hash) && found === undefined) found = key;
    }
    return found;
  }
}
