/**
 * Which failed calls count against the node that served them (transient: retry elsewhere,
 * feed the circuit breaker) and which say nothing about the node (the input, the model,
 * a cancel). The item code alone decides retries (errors.ts); this adds what the pool needs.
 */
import { BackendError } from './errors.js';
import type { FailureKind } from './circuitBreaker.js';

/** How `error` reflects on the node, or undefined when it does not (not transient). */
export function failureKind(error: unknown): FailureKind | undefined {
  if (!(error instanceof BackendError)) return undefined;
  if (error.code === 'BACKEND_TIMEOUT') return 'timeout';
  // The node answered, but garbage: it is misbehaving, as with an unreadable answer.
  if (error.code === 'INVALID_VECTOR') return 'server';
  if (error.code !== 'BACKEND_UNAVAILABLE') return undefined;
  if (error.status === 429 || error.status === 503) return 'overload';
  if (error.status !== undefined) return 'server';
  // No HTTP status: a socket-level failure (it carries the transport error as its cause), or
  // an answer the adapter could not read (no cause): the node is up but misbehaving.
  return error.cause === undefined ? 'server' : 'connection';
}
