/**
 * Hashing and pseudo-random numbers for the simulated node. Nothing here is
 * cryptographic: the only goals are determinism (same input, same output, on every
 * platform and run) and a cost small enough that benchmarks measure the gateway.
 */

/** A source of uniformly distributed unsigned 32-bit integers. */
export type Random32 = () => number;

/**
 * Two independent 32-bit lanes (cyrb53-style) over `a`, a separator, then `b`.
 * Two lanes rather than one so that distinct texts collide on a 64-bit seed, not a
 * 32-bit one: a benchmark embedding a million texts would otherwise see duplicates.
 */
export function hashPair(a: string, b: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < a.length; i++) {
    const ch = a.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  // The separator keeps ("ab", "c") and ("a", "bc") apart.
  h1 = Math.imul(h1 ^ 0xffff, 2654435761);
  h2 = Math.imul(h2 ^ 0xffff, 1597334677);
  for (let i = 0; i < b.length; i++) {
    const ch = b.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [h1 >>> 0, h2 >>> 0];
}

/** sfc32: small, fast, and good enough for test data; seeded by four 32-bit words. */
export function sfc32(a: number, b: number, c: number, d: number): Random32 {
  let s0 = a | 0;
  let s1 = b | 0;
  let s2 = c | 0;
  let s3 = d | 0;
  return () => {
    const t = (((s0 + s1) | 0) + s3) | 0;
    s3 = (s3 + 1) | 0;
    s0 = s1 ^ (s1 >>> 9);
    s1 = (s2 + (s2 << 3)) | 0;
    s2 = (s2 << 21) | (s2 >>> 11);
    s2 = (s2 + t) | 0;
    return t >>> 0;
  };
}

/** A generator seeded from a 64-bit pair, warmed up so close seeds diverge at once. */
export function seededRandom(h1: number, h2: number): Random32 {
  const next = sfc32(h1, h2, h1 ^ 0x9e3779b9, h2 ^ 0x85ebca6b);
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** A generator seeded from one integer (e.g. a user-supplied failure seed). */
export function randomFromSeed(seed: number): Random32 {
  const [h1, h2] = hashPair('seed', String(seed));
  return seededRandom(h1, h2);
}
