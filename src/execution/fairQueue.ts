/**
 * Weighted fair sharing over running jobs (stride scheduling): every job has a weight (its
 * priority's, jobs/priority.ts) and a pass; each free slot goes to the eligible job with the
 * lowest pass, whose pass then grows by its stride (the inverse of its weight). Jobs of equal
 * weight take turns (round-robin, ties by arrival), so a 20-document job behind a
 * 10,000-document one gets the very next slot; a job of weight 4w gets four slots for every
 * one of a job of weight w while both have work, and since every pick raises the picked
 * job's pass, no job with work waits forever (no starvation).
 *
 * A job that joins, or that had no eligible work for a while, starts at the queue's virtual
 * time (the lowest pass among the jobs picked so far), so idling banks no credit and a new
 * job neither jumps far ahead of nor falls behind the others.
 */
import { priorityStride, type Priority } from '../jobs/priority.js';

interface Entry<T> {
  readonly item: T;
  stride: number;
  pass: number;
  readonly seq: number;
}

export class FairQueue<T extends { readonly id: string }> {
  private readonly entries: Entry<T>[] = [];
  private virtualTime = 0;
  private seq = 0;

  add(item: T, priority?: Priority): void {
    this.entries.push({ item, stride: priorityStride(priority), pass: this.virtualTime, seq: this.seq++ });
  }

  remove(id: string): void {
    const at = this.entries.findIndex((e) => e.item.id === id);
    if (at >= 0) this.entries.splice(at, 1);
  }

  /** Changes a queued job's share from its next pick on; false when it is not queued. */
  setPriority(id: string, priority: Priority): boolean {
    const entry = this.entries.find((e) => e.item.id === id);
    if (!entry) return false;
    entry.stride = priorityStride(priority);
    return true;
  }

  get(id: string): T | undefined {
    return this.entries.find((e) => e.item.id === id)?.item;
  }

  /** The eligible item with the lowest pass (ties: the earliest added); its pass moves on by its stride. */
  pick(eligible: (item: T) => boolean): T | undefined {
    let best: Entry<T> | undefined;
    for (const entry of this.entries) {
      if (!eligible(entry.item)) continue;
      if (!best || entry.pass < best.pass || (entry.pass === best.pass && entry.seq < best.seq)) best = entry;
    }
    if (!best) return undefined;
    // No credit for time spent without eligible work.
    best.pass = Math.max(best.pass, this.virtualTime);
    this.virtualTime = best.pass;
    best.pass += best.stride;
    return best.item;
  }

  all(): readonly T[] {
    return this.entries.map((e) => e.item);
  }

  get size(): number {
    return this.entries.length;
  }
}
