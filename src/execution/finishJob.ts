/**
 * Ends a running job whose documents are all done or failed. Any number of processes may
 * call this for the same job at the same moment (each worker after each of its chunks): the
 * store's guarded transition (running -> completed | failed) lets exactly one of them win,
 * and only the winner logs.
 */
import { ADMIN_SCOPE } from '../jobs/model.js';
import { terminalPatch } from '../jobs/lifecycle.js';
import { finalStatus } from '../jobs/state.js';
import type { Logger } from '../logger.js';
import type { JobStore } from '../store/types.js';

/** Returns whether this call finished the job. */
export async function finishIfDone(store: JobStore, jobId: string, ttlMs: number, log: Logger): Promise<boolean> {
  const job = await store.get(ADMIN_SCOPE, jobId);
  if (job?.status !== 'running' || job.completedItems + job.failedItems < job.totalItems) return false;
  const status = finalStatus(job.completedItems);
  const finished = await store.transition(jobId, status, terminalPatch(Date.now(), ttlMs));
  if (!finished) return false;
  const seconds = ((finished.completedAt ?? 0) - finished.createdAt) / 1000;
  log.info({ job_id: jobId, completed: finished.completedItems, failed: finished.failedItems }, `job ${status} in ${seconds.toFixed(2)} s`);
  return true;
}
