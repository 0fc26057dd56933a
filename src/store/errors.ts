/**
 * Store failures, normalised at the store boundary into stable codes so that the job core
 * never mistakes a fault of ours (a full disk, a Redis outage) for a backend's, and the HTTP
 * layer maps them to 507 / 503 without looking at message text.
 *
 * - `STORE_FULL`: the disk (or `--max-store-gb`) has no room for the write. Reads, deletes
 *   and cancels still work; writes succeed again once space is freed.
 * - `STORE_UNAVAILABLE`: the store cannot be reached now (Redis down, SQLite busy beyond
 *   its timeout, an I/O error). Worth another try later.
 */
export const STORE_ERROR_CODES = ['STORE_FULL', 'STORE_UNAVAILABLE'] as const;
export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

export class StoreError extends Error {
  readonly code: StoreErrorCode;

  constructor(code: StoreErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'StoreError';
    this.code = code;
  }
}

export function isStoreError(error: unknown): error is StoreError {
  return error instanceof StoreError;
}
