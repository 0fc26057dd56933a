/**
 * The scheduler's view of one unfinished job: which document ranges are still to be
 * dispatched. Ranges are cut on demand from a cursor, so chunk size is free to change and
 * a range that failed for a transient reason (or must be split to isolate a bad input)
 * goes back in the queue with its attempt count and a not-before time.
 */
import type { EmbedOptions } from '../backends/types.js';
import type { JobType } from '../jobs/model.js';

export interface ChunkRange {
  readonly start: number;
  readonly end: number;
  readonly attempt: number;
  readonly notBefore: number;
  /** Nodes that failed these documents in a way that may be theirs: tried last (chunkProcessor.ts). */
  readonly avoid?: readonly string[];
}

export class ActiveJob {
  private cursor = 0;
  private readonly requeued: ChunkRange[] = [];
  inFlight = 0;

  constructor(
    readonly id: string,
    readonly model: string,
    readonly options: EmbedOptions,
    readonly totalItems: number,
    public status: 'pending' | 'running',
    readonly createdAt: number,
    /** generate/chat jobs take one item per call, on generation slots. */
    readonly type: JobType = 'embed',
  ) {}

  /** The next range ready at `now`, or undefined. Requeued ranges go first. */
  takeRange(chunkSize: number, now: number): ChunkRange | undefined {
    const readyAt = this.requeued.findIndex((r) => r.notBefore <= now);
    if (readyAt >= 0) return this.requeued.splice(readyAt, 1)[0];
    if (this.cursor >= this.totalItems) return undefined;
    const start = this.cursor;
    this.cursor = Math.min(this.totalItems, start + chunkSize);
    return { start, end: this.cursor, attempt: 0, notBefore: 0 };
  }

  /** A requeued range ready at `now` (it goes before new ones), or undefined. */
  takeRequeued(now: number): ChunkRange | undefined {
    const readyAt = this.requeued.findIndex((r) => r.notBefore <= now);
    return readyAt >= 0 ? this.requeued.splice(readyAt, 1)[0] : undefined;
  }

  /** Documents not cut into a range yet. */
  get undispatched(): number {
    return this.totalItems - this.cursor;
  }

  /** The next `size` documents (fewer at the end) as a new range, or undefined when all are cut. */
  cut(size: number): ChunkRange | undefined {
    if (this.cursor >= this.totalItems) return undefined;
    const start = this.cursor;
    this.cursor = Math.min(this.totalItems, start + Math.max(1, size));
    return { start, end: this.cursor, attempt: 0, notBefore: 0 };
  }

  requeue(range: ChunkRange): void {
    this.requeued.push(range);
  }

  /** The earliest time a requeued range becomes ready, if any waits. */
  nextReadyAt(): number | undefined {
    return this.requeued.length === 0 ? undefined : Math.min(...this.requeued.map((r) => r.notBefore));
  }

  hasWork(now: number): boolean {
    return this.cursor < this.totalItems || this.requeued.some((r) => r.notBefore <= now);
  }

  /** Nothing left to dispatch and nothing in flight (but `ignoring` calls whose outcome no longer matters). */
  isDrained(ignoring = 0): boolean {
    return this.cursor >= this.totalItems && this.requeued.length === 0 && this.inFlight - ignoring <= 0;
  }
}
