/**
 * A per-node circuit breaker: takes a failing node out of routing and lets it back in
 * through a single trial call.
 *
 * States and transitions (the only place `state` changes is `setState`):
 *
 * - `closed`: calls flow. Transient failures in a row are counted; any success resets the count.
 *   -> `open` after `failureThreshold` transient failures in a row, or at once on a
 *   connection failure (refused or reset: the node is gone, counting would only lose calls).
 * - `open`: the pool sends the node nothing (unless every node serving a model is open: see
 *   routing.ts), for a cool-down that doubles with every trip in a row, from
 *   `baseCooldownMs` up to `maxCooldownMs`.
 *   -> `half_open` when the cool-down has passed; after a connection failure, only when a
 *   health probe finds the node reachable again (a cool-down says nothing about a dead host).
 * - `half_open`: one trial call at a time.
 *   -> `closed` on its success (the trip count starts again), -> `open` with the next,
 *   longer cool-down on a transient failure.
 *
 * A success from any call closes the breaker: a node that answers is worth using. Failures
 * of calls that started before the breaker opened do not extend the cool-down.
 */

export type CircuitState = 'closed' | 'open' | 'half_open';

/** How a failed call reflects on the node that served it. */
export type FailureKind =
  /** Refused or reset connection: the node is gone until a probe finds it again. */
  | 'connection'
  /** No answer within the call's timeout. */
  | 'timeout'
  /** 429 or 503: the node is overloaded; it should get fewer calls at once. */
  | 'overload'
  /** Another 5xx, or an answer the gateway could not read. */
  | 'server';

export interface BreakerOptions {
  /** Transient failures in a row that open the breaker. @defaultValue 3 */
  readonly failureThreshold: number;
  /** First cool-down, doubled on each trip in a row. @defaultValue 1000 */
  readonly baseCooldownMs: number;
  /** Longest cool-down. @defaultValue 30000 */
  readonly maxCooldownMs: number;
}

export const DEFAULT_BREAKER_OPTIONS: BreakerOptions = Object.freeze({
  failureThreshold: 3,
  baseCooldownMs: 1000,
  maxCooldownMs: 30_000,
});

export type CircuitListener = (from: CircuitState, to: CircuitState) => void;

export class CircuitBreaker {
  private current: CircuitState = 'closed';
  private failuresInRow = 0;
  private tripsInRow = 0;
  private openUntil = 0;
  /** Tripped by a connection failure: only a probe may half-open it. */
  private awaitingProbe = false;
  private trialInFlight = false;
  /** Times the breaker opened, for stats. */
  opens = 0;

  constructor(
    private readonly options: BreakerOptions = DEFAULT_BREAKER_OPTIONS,
    private readonly onChange?: CircuitListener,
  ) {}

  get state(): CircuitState {
    return this.current;
  }

  get consecutiveFailures(): number {
    return this.failuresInRow;
  }

  /** When an open breaker half-opens by itself, or undefined (not open, or waiting for a probe). */
  get reopensAt(): number | undefined {
    return this.current === 'open' && !this.awaitingProbe ? this.openUntil : undefined;
  }

  /** Moves `open` to `half_open` once the cool-down has passed; true if it did. */
  refresh(now: number): boolean {
    if (this.current !== 'open' || this.awaitingProbe || now < this.openUntil) return false;
    this.setState('half_open');
    return true;
  }

  /** Whether a new call may start now (panic routing aside). */
  admits(now: number): boolean {
    this.refresh(now);
    if (this.current === 'closed') return true;
    return this.current === 'half_open' && !this.trialInFlight;
  }

  /** A call is about to be made; returns true when it is the half-open trial (then end it with succeeded, failed or released). */
  callStarted(now: number): boolean {
    this.refresh(now);
    if (this.current !== 'half_open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  succeeded(trial: boolean): void {
    if (trial) this.trialInFlight = false;
    this.failuresInRow = 0;
    this.tripsInRow = 0;
    this.awaitingProbe = false;
    if (this.current !== 'closed') this.setState('closed');
  }

  failed(trial: boolean, kind: FailureKind, now: number): void {
    if (trial) this.trialInFlight = false;
    this.failuresInRow++;
    if (kind === 'connection') {
      // Even when already open: the node is gone, so wait for a probe rather than a timer.
      this.awaitingProbe = true;
      if (this.current !== 'open') this.trip(now);
      return;
    }
    if (this.current === 'open') return;
    if (this.current === 'half_open' || this.failuresInRow >= this.options.failureThreshold) this.trip(now);
  }

  /** The call ended with no verdict on the node (cancelled, input refused, model missing). */
  released(trial: boolean): void {
    if (trial) this.trialInFlight = false;
  }

  /** A health probe reached the node again: after a connection failure, allow a trial call. */
  probeSucceeded(): void {
    if (this.current !== 'open' || !this.awaitingProbe) return;
    this.awaitingProbe = false;
    this.setState('half_open');
  }

  private trip(now: number): void {
    this.tripsInRow++;
    this.opens++;
    const cooldown = Math.min(this.options.maxCooldownMs, this.options.baseCooldownMs * 2 ** (this.tripsInRow - 1));
    this.openUntil = now + cooldown;
    this.setState('open');
  }

  private setState(next: CircuitState): void {
    const from = this.current;
    if (from === next) return;
    this.current = next;
    this.onChange?.(from, next);
  }
}
