/** What the typed client throws: the gateway's `{detail, code}` with the HTTP status, or a network failure. */

export class SollolApiError extends Error {
  override readonly name = 'SollolApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
    /** Seconds, from `Retry-After` (429, 503), when the gateway sent one. */
    readonly retryAfterSeconds: number | undefined,
  ) {
    super(detail);
  }

  detail(): string {
    return this.message;
  }

  /**
   * The request may succeed later unchanged: rate limits, a full job table, a gateway starting or
   * stopping, and a call whose Idempotency-Key another call still holds (409
   * IDEMPOTENCY_IN_PROGRESS: after a gateway died mid-submit, its reservation lasts until its
   * lease ends; `sollol embed` once stopped there).
   */
  get retryable(): boolean {
    return this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504 || this.code === 'IDEMPOTENCY_IN_PROGRESS';
  }
}

/** The gateway could not be reached (refused, reset, DNS, timeout). Always retryable. */
export class SollolConnectionError extends Error {
  override readonly name = 'SollolConnectionError';
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isRetryable(error: unknown): boolean {
  return (error instanceof SollolApiError || error instanceof SollolConnectionError) && error.retryable;
}
