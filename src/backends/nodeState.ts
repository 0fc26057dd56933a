/**
 * What the pool knows about one node: health and models from probes, its circuit breaker,
 * the work in flight on it, how fast it has been, and an adaptive limit on calls in flight.
 */
import { CircuitBreaker, type BreakerOptions, type CircuitListener, type FailureKind } from './circuitBreaker.js';
import { canonicalModel } from './modelNames.js';
import type { EmbeddingBackend } from './types.js';

/** Weight of the newest sample in the moving averages: a node that slows down gets less work within a few calls. */
const EWMA_WEIGHT = 0.2;
/**
 * Calls in flight a node starts with: one in service, the next waiting, so an Ollama node
 * (one call at a time) never idles between calls. Backends allowing more grow towards
 * their `maxConcurrency` as calls succeed.
 */
const INITIAL_LIMIT = 2;

export class NodeState {
  healthy = false;
  models = new Set<string>();
  /**
   * The models of the node's last healthy probe, kept while it is down: a model only
   * unreachable nodes serve is "no backend reachable" (503, a job waits), not "unknown" (404).
   */
  listedModels = new Set<string>();
  /** The node answered with this gateway's own instance id: never used. */
  isSelf = false;
  lastProbeAt = 0;
  /** Leases held (calls in flight, plus slots granted whose call has not started). */
  inFlight = 0;
  /** Documents in calls in flight. */
  inFlightDocs = 0;
  /** Calls in flight, as opposed to leases held. */
  callsInFlight = 0;
  /** Current limit on leases held: additive increase on success, halved when the node says it is overloaded. */
  limit: number;
  /** Round trip of a call, moving average. */
  latencyMs: number | null = null;
  /**
   * Node time per document, moving average: a call's service time counts from when the node
   * finished the call before it (an Ollama node serves one call at a time, so a call that
   * waited behind another is not charged the wait).
   */
  msPerDoc: number | null = null;
  calls = 0;
  documents = 0;
  errors = 0;
  readonly errorsByCode: Record<string, number> = {};
  lastError: string | null = null;
  /** When (wall clock) a call last failed transiently: the node is second choice for a short while. */
  lastFailureAt = Number.NEGATIVE_INFINITY;
  readonly breaker: CircuitBreaker;
  private successesSinceChange = 0;
  private lastCallEnd = 0;

  constructor(
    readonly backend: EmbeddingBackend,
    breakerOptions: BreakerOptions,
    onCircuitChange: CircuitListener,
  ) {
    this.limit = Math.max(1, Math.min(INITIAL_LIMIT, backend.maxConcurrency));
    this.breaker = new CircuitBreaker(breakerOptions, onCircuitChange);
  }

  serves(model: string): boolean {
    return this.models.has(canonicalModel(model));
  }

  /** Whether the node is down now but listed `model` when it was last up. */
  listedWhileDown(model: string): boolean {
    return !this.healthy && !this.isSelf && this.listedModels.has(canonicalModel(model));
  }

  /** Forgets a model the node refused, until its next probe lists its models again. */
  dropModel(model: string): void {
    this.models.delete(canonicalModel(model));
  }

  hasRoom(): boolean {
    return this.inFlight < this.limit;
  }

  callStarted(docs: number): void {
    this.calls++;
    this.callsInFlight++;
    this.inFlightDocs += docs;
  }

  callSucceeded(docs: number, startedAt: number, endedAt: number): void {
    const service = endedAt - Math.max(startedAt, this.lastCallEnd);
    this.callEnded(docs, endedAt);
    this.documents += docs;
    this.latencyMs = average(this.latencyMs, endedAt - startedAt);
    this.msPerDoc = average(this.msPerDoc, service / Math.max(1, docs));
    if (++this.successesSinceChange >= this.limit && this.limit < this.backend.maxConcurrency) {
      this.limit++;
      this.successesSinceChange = 0;
    }
  }

  callFailed(docs: number, endedAt: number, code: string, message: string, kind: FailureKind | undefined): void {
    this.callEnded(docs, endedAt);
    this.errors++;
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    this.lastError = message;
    if (kind === undefined) return;
    this.successesSinceChange = 0;
    if (kind === 'overload' || kind === 'timeout') this.limit = Math.max(1, Math.floor(this.limit / 2));
  }

  /** A call that ended without an answer either way (cancelled). */
  callAborted(docs: number, endedAt: number): void {
    this.callEnded(docs, endedAt);
  }

  private callEnded(docs: number, endedAt: number): void {
    this.callsInFlight--;
    this.inFlightDocs -= docs;
    this.lastCallEnd = Math.max(this.lastCallEnd, endedAt);
  }
}

function average(current: number | null, sample: number): number {
  return current === null ? sample : current * (1 - EWMA_WEIGHT) + sample * EWMA_WEIGHT;
}
