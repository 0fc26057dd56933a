/** Small rules about finishing a job, shared by the job manager and the scheduler. */
import type { JobError } from './model.js';
import type { TransitionPatch } from '../store/types.js';

/** The patch for entering a terminal state: the job expires `ttlMs` after it finished. */
export function terminalPatch(now: number, ttlMs: number, error?: JobError): TransitionPatch {
  return error ? { at: now, expiresAt: now + ttlMs, error } : { at: now, expiresAt: now + ttlMs };
}
