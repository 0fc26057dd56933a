/**
 * One HTTP call's abort signal: aborted by the caller's signal or after `timeoutMs`, whichever
 * comes first, on one AbortController and one timer. (AbortSignal.timeout with AbortSignal.any
 * made three signals per call, each tracked with weak references and finalizers until collected.)
 * Call `done` once the call has settled, body read included.
 */
export interface CallSignal {
  readonly signal: AbortSignal;
  /** Whether the timeout (not the caller) ended the call. */
  readonly timedOut: boolean;
  done(): void;
}

export function callSignal(timeoutMs: number, caller?: AbortSignal): CallSignal {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  }, timeoutMs);
  // Like AbortSignal.timeout: a call in flight does not keep the process alive by its timer.
  timer.unref();
  const onAbort = (): void => controller.abort(caller!.reason);
  if (caller?.aborted) controller.abort(caller.reason);
  else caller?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    get timedOut() {
      return timedOut;
    },
    done() {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onAbort);
    },
  };
}
