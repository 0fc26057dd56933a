/**
 * Subscriptions to job events, shared by the SSE and WebSocket routes: one job, or every job
 * of the caller's scope (the newest {@link ALL_JOBS_LIMIT}). Reads go through the job manager
 * with the caller's scope, so a key only ever hears about its own jobs (an admin about all).
 */
import { ApiError } from '../../errors.js';
import type { JobManager } from '../../jobs/manager.js';
import type { Scope } from '../../jobs/model.js';
import type { JobStatusView } from '../../jobs/view.js';
import { JobEventTracker, scopeKey, type JobEvent, type SharedPoller } from './feed.js';

export const ALL_JOBS_LIMIT = 100;

export type EventSink = (event: JobEvent) => void;

export class JobSubscriptions {
  constructor(private readonly manager: JobManager, private readonly poller: SharedPoller) {}

  /**
   * Follows one job: its current snapshot is sent at once (then only changes); `onEnd` runs
   * after the `end` event, or when the job disappears (deleted or expired).
   * Throws JOB_NOT_FOUND (404) for a job the scope cannot see, before anything is sent.
   */
  async followJob(scope: Scope, jobId: string, lastEventId: number | undefined, send: EventSink, onEnd: () => void): Promise<() => void> {
    const first = await this.manager.status(scope, jobId);
    const id = first.job_id;
    const tracker = new JobEventTracker(lastEventId);
    let stopped = false;
    const deliver = (view: JobStatusView | undefined): void => {
      if (stopped) return;
      if (view === undefined) {
        stop();
        onEnd();
        return;
      }
      for (const event of tracker.next(view)) send(event);
      if (tracker.finished) {
        stop();
        onEnd();
      }
    };
    // The key holds the scope: two keys never share a read that only one of them may make.
    const unsubscribe = this.poller.subscribe(`job:${scopeKey(scope)}:${id}`, () => this.readJob(scope, id), deliver);
    const stop = (): void => {
      stopped = true;
      unsubscribe();
    };
    deliver(first);
    return stop;
  }

  /** Follows every job of the scope: a `status` for each at once, then their changes. */
  followAll(scope: Scope, lastEventIds: ReadonlyMap<string, number>, send: EventSink): () => void {
    const trackers = new Map<string, JobEventTracker>();
    let stopped = false;
    const deliver = (views: JobStatusView[]): void => {
      if (stopped) return;
      const listed = new Set<string>();
      for (const view of views) {
        listed.add(view.job_id);
        let tracker = trackers.get(view.job_id);
        if (!tracker) {
          tracker = new JobEventTracker(lastEventIds.get(view.job_id));
          trackers.set(view.job_id, tracker);
        }
        for (const event of tracker.next(view)) send(event);
      }
      for (const id of trackers.keys()) if (!listed.has(id)) trackers.delete(id);
    };
    const read = async (): Promise<JobStatusView[]> => (await this.manager.list(scope, { limit: ALL_JOBS_LIMIT })).jobs.reverse();
    const unsubscribe = this.poller.subscribe(scopeKey(scope), read, deliver);
    // The first snapshot at once; a failed read is retried by the poller's next tick.
    void read().then(deliver, () => undefined);
    return () => {
      stopped = true;
      unsubscribe();
    };
  }

  private async readJob(scope: Scope, id: string): Promise<JobStatusView | undefined> {
    try {
      return await this.manager.status(scope, id);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'JOB_NOT_FOUND') return undefined;
      throw error;
    }
  }
}
