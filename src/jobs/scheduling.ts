/**
 * Scheduled jobs and dependencies. A job submitted with a `run_at` still to come, or with
 * `depends_on` parents, is admitted `scheduled` (state.ts) with its control record
 * (store/control.ts) and takes no slot. The promoter, one background task (background.ts),
 * looks at the scheduled jobs every tick: a job whose time has come and whose parents all
 * completed is released (`pending`/`running`, into the scheduler at its priority); one whose
 * parent failed, was cancelled or is gone fails with DEPENDENCY_FAILED naming that parent.
 * Everything it reads is in the store, so a restart (or another gateway on the same Redis)
 * carries on; the store's guarded transitions make each release happen once.
 */
import type { JobStore } from '../store/types.js';
import type { ControlStore, JobControl } from '../store/control.js';
import { isoTime } from './view.js';
import { ADMIN_SCOPE } from './model.js';
import type { BackgroundTasks } from './background.js';
import { DEFAULT_PRIORITY, type Priority } from './priority.js';

/** Job control asked for on submit (any job type). */
export interface SubmitControl {
  readonly priority?: Priority;
  /** Epoch ms. */
  readonly runAt?: number;
  readonly dependsOn?: readonly string[];
  readonly template?: string;
  readonly callbackUrl?: string;
  /** The child's documents come from this parent's results (it waits for the parent, as with depends_on). */
  readonly documentsFrom?: { readonly jobId: string; readonly field: string };
}

/** Most scheduled jobs one promoter tick looks at (oldest first). */
const TICK_BATCH = 1000;
export const PROMOTER_TASK = 'scheduled-jobs';
const PROMOTER_INTERVAL_MS = 500;
const SWEEP_INTERVAL_MS = 60_000;
/** A control record this old whose job is gone is an orphan (the job expired, was purged, or never got admitted). */
const ORPHAN_AGE_MS = 60_000;

/** Whether a new job must wait (`scheduled`) rather than start now. */
export function mustHold(control: JobControl, now: number): boolean {
  return (control.runAt !== null && control.runAt > now) || control.dependsOn.length > 0;
}

/** The job-control fields of a job's status, list entry and submit answer. */
export function controlView(control: JobControl | undefined): { priority: Priority; run_at?: string; depends_on?: string[]; template?: string } {
  if (!control) return { priority: DEFAULT_PRIORITY };
  return {
    priority: control.priority,
    ...(control.runAt !== null ? { run_at: isoTime(control.runAt)! } : {}),
    ...(control.dependsOn.length > 0 ? { depends_on: [...control.dependsOn] } : {}),
    ...(control.template !== null ? { template: control.template } : {}),
  };
}

/** ISO 8601 with an explicit offset (Z or ±hh:mm), e.g. 2026-12-01T10:00:00+01:00. */
const RUN_AT_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

/** Epoch ms of a `run_at`, or undefined when it is not ISO 8601 with an offset. */
export function parseRunAt(text: string): number | undefined {
  if (!RUN_AT_PATTERN.test(text)) return undefined;
  const ms = Date.parse(text);
  return Number.isFinite(ms) ? ms : undefined;
}

/** What the promoter needs of the job manager. */
export interface Releaser {
  release(id: string): Promise<unknown>;
  failScheduled(id: string, error: { code: 'DEPENDENCY_FAILED'; error: string }): Promise<boolean>;
}

export class JobScheduling {
  constructor(
    private readonly store: JobStore,
    private readonly control: ControlStore,
    private readonly releaser: Releaser,
  ) {}

  start(tasks: BackgroundTasks): void {
    tasks.every(PROMOTER_TASK, PROMOTER_INTERVAL_MS, () => this.promote(Date.now()));
    tasks.every('job-control-sweep', SWEEP_INTERVAL_MS, () => this.sweep(Date.now()));
  }

  /** One tick: release or fail every scheduled job that is due. */
  async promote(now: number): Promise<void> {
    const { jobs } = await this.store.list(ADMIN_SCOPE, { status: 'scheduled', limit: TICK_BATCH });
    if (jobs.length === 0) return;
    const controls = await this.control.controls(jobs.map((j) => j.id));
    for (const job of [...jobs].reverse()) {
      const control = controls.get(job.id);
      if (control?.runAt != null && control.runAt > now) continue;
      const verdict = await this.parentsVerdict(control?.dependsOn ?? []);
      if (verdict === 'wait') continue;
      if (verdict === 'ready') await this.releaser.release(job.id);
      else await this.releaser.failScheduled(job.id, { code: 'DEPENDENCY_FAILED', error: verdict.reason });
    }
  }

  private async parentsVerdict(parents: readonly string[]): Promise<'ready' | 'wait' | { reason: string }> {
    let waiting = false;
    for (const parent of parents) {
      const status = await this.store.status(parent);
      if (status === 'completed') continue;
      if (status === 'failed' || status === 'cancelled') return { reason: `Parent job ${parent} ${status}, so this job cannot run (depends_on)` };
      if (status === undefined) return { reason: `Parent job ${parent} no longer exists, so this job cannot run (depends_on)` };
      waiting = true;
    }
    return waiting ? 'wait' : 'ready';
  }

  /** Drops control records whose job is gone, and expired idempotency answers. */
  async sweep(now: number): Promise<void> {
    const ids = await this.control.controlledJobIds();
    const controls = await this.control.controls(ids);
    for (const [id, control] of controls) {
      if (control.createdAt > now - ORPHAN_AGE_MS) continue;
      if ((await this.store.status(id)) === undefined) await this.control.deleteControl(id);
    }
    await this.control.sweepIdempotency(now);
  }
}
