/**
 * Round-robin over running jobs: each free slot goes to the next job in turn that has work
 * the slot can serve, so a 20-document job behind a 10,000-document one gets the very next
 * slot instead of waiting for the big one to finish.
 */
export class FairQueue<T extends { readonly id: string }> {
  private readonly items: T[] = [];
  private next = 0;

  add(item: T): void {
    this.items.push(item);
  }

  remove(id: string): void {
    const at = this.items.findIndex((i) => i.id === id);
    if (at < 0) return;
    this.items.splice(at, 1);
    if (at < this.next) this.next--;
    if (this.next >= this.items.length) this.next = 0;
  }

  get(id: string): T | undefined {
    return this.items.find((i) => i.id === id);
  }

  /** The next item in turn that `eligible` accepts; the turn moves past it. */
  pick(eligible: (item: T) => boolean): T | undefined {
    for (let i = 0; i < this.items.length; i++) {
      const at = (this.next + i) % this.items.length;
      const item = this.items[at]!;
      if (eligible(item)) {
        this.next = (at + 1) % this.items.length;
        return item;
      }
    }
    return undefined;
  }

  all(): readonly T[] {
    return this.items;
  }

  get size(): number {
    return this.items.length;
  }
}
