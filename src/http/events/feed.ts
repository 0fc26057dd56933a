/**
 * Live job events for SSE and WebSocket subscribers (docs/ARCHITECTURE.md, "Live events").
 *
 * The source of truth is the shared store, so events work the same in embedded and
 * distributed mode and behind several gateways: while a job (or an owner's job list) has
 * subscribers, ONE timer per gateway reads it every {@link POLL_INTERVAL_MS} and hands the
 * snapshot to every subscriber; with no subscribers nothing is read. Each subscriber keeps
 * what it last sent and turns snapshots into events:
 *   `status` on each transition (and once on subscribe), `progress` when the counts moved,
 *   `end` with the final counts once the job is terminal.
 * Event ids are monotonic per job and derived from the snapshot itself
 * (done * 4 + rank; rank 0 pending, 1 running, 2 terminal status, 3 end), so a client that
 * reconnects with `Last-Event-ID` is sent only what it has not seen, on any gateway.
 */
import type { Scope } from '../../jobs/model.js';
import { isTerminal, type JobStatus } from '../../jobs/state.js';
import type { JobStatusView } from '../../jobs/view.js';
type Logger = Pick<import('fastify').FastifyBaseLogger, 'warn'>;

export const POLL_INTERVAL_MS = 250;
export const HEARTBEAT_INTERVAL_MS = 15_000;

export type JobEventName = 'status' | 'progress' | 'end';

export interface JobEvent {
  readonly event: JobEventName;
  /** Monotonic per job; the SSE `id:` line. */
  readonly id: number;
  readonly jobId: string;
  readonly data: Record<string, unknown>;
}

function rankOf(view: JobStatusView): number {
  if (view.status === 'pending') return 0;
  if (view.status === 'running') return 1;
  return 2;
}

export function eventId(view: JobStatusView, end = false): number {
  return (view.progress.completed_items + view.progress.failed_items) * 4 + (end ? 3 : rankOf(view));
}

function counts(view: JobStatusView): Record<string, unknown> {
  return { job_id: view.job_id, status: view.status, ...view.progress };
}

/**
 * Turns successive snapshots of one job into events, never repeating one whose id is at
 * or below the last sent (`lastEventId` of a reconnect included).
 */
export class JobEventTracker {
  private lastId: number;
  private lastStatus: string | undefined;
  private ended = false;

  constructor(lastEventId: number | undefined) {
    this.lastId = lastEventId ?? -1;
  }

  get finished(): boolean {
    return this.ended;
  }

  next(view: JobStatusView): JobEvent[] {
    if (this.ended) return [];
    const out: JobEvent[] = [];
    const id = eventId(view);
    if (view.status !== this.lastStatus) {
      if (id > this.lastId) out.push({ event: 'status', id, jobId: view.job_id, data: { ...view } });
      this.lastStatus = view.status;
    } else if (id > this.lastId) {
      out.push({ event: 'progress', id, jobId: view.job_id, data: counts(view) });
    }
    if (isTerminal(view.status as JobStatus)) {
      const endId = eventId(view, true);
      if (endId > this.lastId) out.push({ event: 'end', id: endId, jobId: view.job_id, data: { ...counts(view), duration_seconds: view.duration_seconds } });
      this.ended = true;
    }
    const last = out.at(-1);
    if (last) this.lastId = last.id;
    return out;
  }
}

type Reader<T> = () => Promise<T>;
type Listener<T> = (value: T) => void;

interface Topic<T> {
  readonly read: Reader<T>;
  readonly listeners: Set<Listener<T>>;
  timer: NodeJS.Timeout | undefined;
  reading: boolean;
}

/**
 * One polling timer per key while it has listeners. A failed read is logged and tried again
 * at the next tick (a store restart is waited out, the subscribers stay connected).
 */
export class SharedPoller {
  private readonly topics = new Map<string, Topic<unknown>>();

  constructor(private readonly log: Logger, private readonly intervalMs = POLL_INTERVAL_MS) {}

  subscribe<T>(key: string, read: Reader<T>, listener: Listener<T>): () => void {
    let topic = this.topics.get(key) as Topic<T> | undefined;
    if (!topic) {
      topic = { read, listeners: new Set(), timer: undefined, reading: false };
      this.topics.set(key, topic as Topic<unknown>);
      const t = topic;
      t.timer = setInterval(() => void this.tick(key, t), this.intervalMs);
      t.timer.unref();
    }
    topic.listeners.add(listener);
    return () => {
      const t = this.topics.get(key);
      if (!t) return;
      t.listeners.delete(listener as Listener<unknown>);
      if (t.listeners.size === 0) {
        clearInterval(t.timer);
        this.topics.delete(key);
      }
    };
  }

  private async tick<T>(key: string, topic: Topic<T>): Promise<void> {
    if (topic.reading) return;
    topic.reading = true;
    try {
      const value = await topic.read();
      for (const listener of [...topic.listeners]) {
        try {
          listener(value);
        } catch (error) {
          this.log.warn({ err: error, key }, 'event subscriber failed');
        }
      }
    } catch (error) {
      this.log.warn({ err: error, key }, 'reading job events from the store failed; trying again');
    } finally {
      topic.reading = false;
    }
  }

  get topicCount(): number {
    return this.topics.size;
  }

  close(): void {
    for (const topic of this.topics.values()) clearInterval(topic.timer);
    this.topics.clear();
  }
}

/** The key of a scope's "all my jobs" topic. */
export function scopeKey(scope: Scope): string {
  return scope.kind === 'admin' ? 'all:admin' : `all:owner:${scope.owner}`;
}
