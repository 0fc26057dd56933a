/**
 * The content cache's in-memory key index (embeddingCache.ts): 48-bit short keys to entry
 * numbers, in two typed arrays (open addressing, linear probing, deletion by backward shift),
 * outside the JavaScript heap. A `Map<number, number>` held the same entries in about the
 * same bytes, but a 48-bit key is a heap number and a full cache deletes one entry per entry
 * added: the Map's table, rebuilt every few thousand deletes (15 MB at 350,000 entries), and
 * the dead keys were garbage the heap grew for. Measured: 350,000 entries, then 1,000,000
 * deletes and inserts, peak heap 155 MB and RSS 231 MB with the Map (bench notes in the
 * commit); these arrays take 16 bytes a slot, allocated once per doubling.
 */
const EMPTY = 0;
/** Grows once more than this share of the slots is used: short probe runs, half the bytes of 0.5. */
const MAX_LOAD = 0.7;
const MIN_CAPACITY = 1024;

export class ShortKeyIndex {
  /** key + 1 per slot (0: empty); exact as a double, keys being under 2^48. */
  private keys: Float64Array;
  private values: Float64Array;
  private mask: number;
  /** 32 - log2(capacity): a slot is the top bits of the mixed key (multiplicative hashing). */
  private shift: number;
  private count = 0;

  constructor(expected = 0) {
    let capacity = MIN_CAPACITY;
    while (expected > capacity * MAX_LOAD) capacity *= 2;
    this.keys = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.mask = capacity - 1;
    this.shift = 32 - Math.log2(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Slots held, for tests and figures. */
  get capacity(): number {
    return this.mask + 1;
  }

  get(key: number): number | undefined {
    const slot = this.find(key);
    return slot < 0 ? undefined : this.values[slot];
  }

  has(key: number): boolean {
    return this.find(key) >= 0;
  }

  set(key: number, value: number): void {
    const stored = key + 1;
    let slot = this.home(key);
    for (;;) {
      const at = this.keys[slot]!;
      if (at === stored) {
        this.values[slot] = value;
        return;
      }
      if (at === EMPTY) break;
      slot = (slot + 1) & this.mask;
    }
    if (this.count + 1 > this.capacity * MAX_LOAD) {
      this.grow();
      this.set(key, value);
      return;
    }
    this.keys[slot] = stored;
    this.values[slot] = value;
    this.count++;
  }

  delete(key: number): boolean {
    let hole = this.find(key);
    if (hole < 0) return false;
    // Backward shift: entries after the hole whose home is not between it and them move into it.
    const { keys, values, mask } = this;
    let next = hole;
    for (;;) {
      next = (next + 1) & mask;
      const at = keys[next]!;
      if (at === EMPTY) break;
      const home = this.home(at - 1);
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next;
      if (stays) continue;
      keys[hole] = at;
      values[hole] = values[next]!;
      hole = next;
    }
    keys[hole] = EMPTY;
    values[hole] = 0;
    this.count--;
    return true;
  }

  private find(key: number): number {
    const stored = key + 1;
    let slot = this.home(key);
    for (;;) {
      const at = this.keys[slot]!;
      if (at === stored) return slot;
      if (at === EMPTY) return -1;
      slot = (slot + 1) & this.mask;
    }
  }

  /** The key's first slot: its two 24-bit halves mixed (keys are hash bits, but tests pick their own). */
  private home(key: number): number {
    const low = key % 0x1000000;
    const high = (key - low) / 0x1000000;
    return Math.imul(low ^ Math.imul(high, 0x85ebca6b), 0x9e3779b1) >>> this.shift;
  }

  private grow(): void {
    const { keys, values } = this;
    const capacity = keys.length * 2;
    this.keys = new Float64Array(capacity);
    this.values = new Float64Array(capacity);
    this.mask = capacity - 1;
    this.shift = 32 - Math.log2(capacity);
    this.count = 0;
    for (let slot = 0; slot < keys.length; slot++) {
      const at = keys[slot]!;
      if (at !== EMPTY) this.set(at - 1, values[slot]!);
    }
  }
}
