/**
 * The job state machine.
 *
 *   scheduled --> pending --> running --> completed
 *      |  |          |           |------> failed
 *      |  |          |           '------> cancelled
 *      |  |          |------------------> cancelled
 *      |  |          '------------------> failed      (no backend within --pending-timeout)
 *      |  '--------------------> running               (released while a backend serves it)
 *      |-----------------------> cancelled
 *      '-----------------------> failed                (DEPENDENCY_FAILED: a parent failed or was cancelled)
 *
 * `scheduled` holds a job until its `run_at` has come and every job in its `depends_on` has
 * completed (jobs/scheduling.ts releases it); it takes no slot and keeps no timer of its own,
 * so it survives restarts as a row in the store. `pending` means no backend can serve the job yet; every admitted job that can be served
 * is `running` at once and shares the execution slots fairly with the others. Terminal
 * states never change: the store applies a transition only if the row is still in one of
 * the states that may lead to the target (`UPDATE ... WHERE status IN (...)`), so a cancel
 * racing a completion has exactly one winner. This table is the one place transitions are
 * allowed; nothing else writes a status.
 */

export const JOB_STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled', 'scheduled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type TerminalStatus = 'completed' | 'failed' | 'cancelled';

const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  scheduled: ['pending', 'running', 'cancelled', 'failed'],
  pending: ['running', 'cancelled', 'failed'],
  running: ['completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

export function isTerminal(status: JobStatus): status is TerminalStatus {
  return TRANSITIONS[status].length === 0;
}

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The states from which `to` may be entered: the store's guard for an atomic transition. */
export function statesLeadingTo(to: JobStatus): JobStatus[] {
  return JOB_STATUSES.filter((from) => canTransition(from, to));
}

export function isJobStatus(value: string): value is JobStatus {
  return (JOB_STATUSES as readonly string[]).includes(value);
}

/**
 * Once every item is done or failed: `completed` when at least one item succeeded
 * (failed items are reported per item), `failed` when none did.
 */
export function finalStatus(completedItems: number): 'completed' | 'failed' {
  return completedItems > 0 ? 'completed' : 'failed';
}
