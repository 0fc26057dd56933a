/**
 * Every error the gateway answers with has a stable code, an HTTP status and a default
 * sentence. Codes are never reused for another meaning (fastify's lib/errors.js habit);
 * test/errors.test.ts checks that each one is documented in the README.
 */

export const API_ERRORS = {
  INVALID_JSON: 400,
  INVALID_BODY: 400,
  INVALID_MODEL: 400,
  NO_DOCUMENTS: 400,
  BATCH_TOO_LARGE: 400,
  INVALID_DOCUMENT: 400,
  INVALID_METADATA: 400,
  INVALID_OPTIONS: 400,
  INVALID_LIMIT: 400,
  INVALID_QUERY: 400,
  MODEL_NOT_FOUND: 400,
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  JOB_NOT_CANCELLABLE: 404,
  JOB_NOT_FINISHED: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_JOBS: 429,
  BATCH_DISABLED: 503,
  INTERNAL_ERROR: 500,
  // Hardening: API keys, per-key limits, document length, the store's disk cap.
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  TOO_MANY_ACTIVE_JOBS: 429,
  DOCUMENT_TOO_LONG: 400,
  STORE_FULL: 507,
  // Store faults (src/store/errors.ts): the store cannot be used right now (Redis down, SQLite I/O error, busy); with Retry-After.
  STORE_UNAVAILABLE: 503,
  // Sync API (Ollama-compatible /api/embed ..., OpenAI-compatible /v1/*); there MODEL_NOT_FOUND answers 404.
  INVALID_INPUT: 400,
  UNSUPPORTED_OPERATION: 400,
  INPUT_REJECTED: 400,
  BACKEND_UNAVAILABLE: 503,
  BACKEND_TIMEOUT: 504,
  // A node answered with something that is not a valid vector (NaN, null, mixed lengths...).
  INVALID_VECTOR: 502,
  // Job control (issue 15): idempotency keys, priorities, scheduled jobs and dependencies.
  INVALID_IDEMPOTENCY_KEY: 400,
  IDEMPOTENCY_CONFLICT: 409,
  IDEMPOTENCY_IN_PROGRESS: 409,
  INVALID_PRIORITY: 400,
  INVALID_RUN_AT: 400,
  INVALID_DEPENDENCY: 400,
  JOB_NOT_CHANGEABLE: 409,
  INVALID_CALLBACK_URL: 400,
  WEBHOOK_NOT_ALLOWED: 400,
  INVALID_TEMPLATE: 400,
  INVALID_SCHEDULE: 400,
  TEMPLATE_NOT_FOUND: 404,
  TEMPLATE_EXISTS: 409,
  // OpenAI Files API (/v1/files).
  INVALID_FILE: 400,
  FILE_NOT_FOUND: 404,
  // OpenAI Batch API (/v1/batches).
  BATCH_NOT_FOUND: 404,
  BATCH_NOT_CANCELLABLE: 409,
} as const;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** An error meant for the client: `{detail, code}` with the code's status. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ApiErrorCode, detail: string, headers: Record<string, string> = {}) {
    super(detail);
    this.name = 'ApiError';
    this.code = code;
    this.statusCode = API_ERRORS[code];
    this.headers = headers;
  }
}

/** 1234567 -> "1,234,567", as the seed's messages print counts. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
