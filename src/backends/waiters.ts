/** Abortable waiting for a slot, shared by the embedding pool and the generation slots. */
import { BackendError } from './errors.js';

/** A queued call: `grant` hands it the slot it waited for. */
export interface Grantee<L> {
  readonly grant: (lease: L) => void;
}

/**
 * Queues the waiter `make` builds (around the grant it is given) on `waiters` and resolves with
 * the lease it is granted. On abort of `signal` the waiter leaves the queue, the promise rejects
 * with CANCELLED (`message`), and `onCancelled` runs (a freed place in the queue may let others on).
 */
export function waitForGrant<L, W extends Grantee<L>>(
  waiters: W[],
  make: (grant: (lease: L) => void) => W,
  signal: AbortSignal | undefined,
  message: string,
  onCancelled: () => void,
): Promise<L> {
  return new Promise<L>((resolve, reject) => {
    const waiter = make((lease) => {
      signal?.removeEventListener('abort', onAbort);
      resolve(lease);
    });
    const onAbort = (): void => {
      const at = waiters.indexOf(waiter);
      if (at >= 0) waiters.splice(at, 1);
      reject(new BackendError('CANCELLED', message));
      onCancelled();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    waiters.push(waiter);
  });
}
