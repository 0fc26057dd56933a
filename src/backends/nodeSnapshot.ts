/** A node as `/api/stats` (and the sync API's model lists) show it: plain data, snake_case. */
import type { CircuitState } from './circuitBreaker.js';
import type { NodeState } from './nodeState.js';

export interface NodeSnapshot {
  readonly url: string;
  readonly kind: string;
  readonly healthy: boolean;
  /** `closed` (in use), `open` (taken out after failures), `half_open` (one trial call allowed). */
  readonly circuit: CircuitState;
  readonly models: readonly string[];
  readonly in_flight: number;
  /** The current (adaptive) limit on calls in flight. */
  readonly max_in_flight: number;
  /** The backend's own ceiling for `max_in_flight`. */
  readonly max_concurrency: number;
  /** Round trip of a call, moving average. */
  readonly latency_ms: number | null;
  /** Node time per document, moving average (what routing compares). */
  readonly ms_per_document: number | null;
  readonly calls: number;
  readonly documents: number;
  readonly errors: number;
  readonly errors_by_code: Readonly<Record<string, number>>;
  readonly consecutive_failures: number;
  readonly circuit_opens: number;
  readonly last_error: string | null;
  /** Generation slots of the node (`?parallel=N`; 0: it generates nothing) and how many are in use. */
  readonly generation_parallel?: number;
  readonly generation_in_flight?: number;
}

export function snapshotOf(n: NodeState, now: number): NodeSnapshot {
  n.breaker.refresh(now);
  return {
    url: n.backend.id,
    kind: n.backend.kind,
    healthy: n.healthy,
    circuit: n.breaker.state,
    models: [...n.models].sort(),
    in_flight: n.inFlight,
    max_in_flight: n.limit,
    max_concurrency: n.backend.maxConcurrency,
    latency_ms: round(n.latencyMs),
    ms_per_document: round(n.msPerDoc, 1000),
    calls: n.calls,
    documents: n.documents,
    errors: n.errors,
    errors_by_code: { ...n.errorsByCode },
    consecutive_failures: n.breaker.consecutiveFailures,
    circuit_opens: n.breaker.opens,
    last_error: n.lastError,
  };
}

function round(value: number | null, scale = 10): number | null {
  return value === null ? null : Math.round(value * scale) / scale;
}
