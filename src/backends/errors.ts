/**
 * Backend failures, normalised at the boundary into stable item codes so that the job
 * core and the HTTP layer never look at message text.
 */

/** Stable per-item error codes (docs/ARCHITECTURE.md, "Batch API rules"). Never reused for another meaning. */
export const ITEM_ERROR_CODES = [
  'BACKEND_UNAVAILABLE',
  'BACKEND_TIMEOUT',
  'INPUT_REJECTED',
  'MODEL_NOT_FOUND',
  'CANCELLED',
  'GATEWAY_RESTARTED',
  /** The node answered something that is not a valid vector for the call (vectorCheck.ts). */
  'INVALID_VECTOR',
  // A parent in depends_on failed or was cancelled (job-level; every item of the child fails with it).
  'DEPENDENCY_FAILED',
] as const;

export type ItemErrorCode = (typeof ITEM_ERROR_CODES)[number];

/** Which codes are worth another try, possibly on another node. */
export const RETRYABLE_ITEM_CODES: ReadonlySet<ItemErrorCode> = new Set([
  'BACKEND_UNAVAILABLE',
  'BACKEND_TIMEOUT',
]);

export class BackendError extends Error {
  readonly code: ItemErrorCode;
  readonly retryable: boolean;
  /** HTTP status the backend answered with, when it answered. */
  readonly status: number | undefined;

  constructor(code: ItemErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'BackendError';
    this.code = code;
    this.status = options.status;
    this.retryable = RETRYABLE_ITEM_CODES.has(code);
  }
}

/** Turns anything thrown by a backend call into a BackendError (graphile-worker's coerceError). */
export function coerceBackendError(error: unknown, backendId: string): BackendError {
  if (error instanceof BackendError) return error;
  const err = error as { name?: string; code?: string; message?: string } | undefined;
  if (err?.name === 'AbortError' || err?.code === 'UND_ERR_ABORTED') {
    return new BackendError('CANCELLED', `Call to ${backendId} was aborted`, { cause: error });
  }
  if (err?.name === 'TimeoutError' || err?.code === 'UND_ERR_HEADERS_TIMEOUT' || err?.code === 'UND_ERR_BODY_TIMEOUT') {
    return new BackendError('BACKEND_TIMEOUT', `Backend ${backendId} did not answer in time`, { cause: error });
  }
  const reason = err?.code ?? err?.message ?? String(error);
  return new BackendError('BACKEND_UNAVAILABLE', `Backend ${backendId} is unreachable (${reason})`, { cause: error });
}
