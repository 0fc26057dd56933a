/**
 * The simulated node's failure modes and pacing: the serial queue, the hang, the
 * failure dice and the delays. Every wait takes the request's AbortSignal, so a
 * client that goes away (or a node that closes) leaves no timer or waiter behind.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { randomFromSeed, type Random32 } from './random.js';

/** Waits `ms`, or rejects with the signal's reason when it aborts first (the timer is cleared). */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  // No timer at all for zero: benchmarks with no delay should not pay a macrotask.
  if (ms <= 0) return Promise.resolve();
  return sleep(ms, undefined, { signal });
}

/** Waits until `deadline` (a `performance.now()` time): at once when it has passed. */
export function pauseUntil(deadline: number, signal: AbortSignal): Promise<void> {
  return pause(deadline - performance.now(), signal);
}

/**
 * The runner's own clock, so a node set to `d` ms per call delivers exactly that: a call's
 * service is due `d` after it began being served, and the node's own costs (building the
 * answer, writing it, a timer that fires late, the turnaround to the next call) are spent
 * within that budget instead of on top of it. A call begins being served when it arrived,
 * or, in serial mode, when the call before it was due, whichever is later: a queued call
 * starts the instant the runner is free, as a real runner works through its queue. So over
 * any busy stretch the node delivers its nominal rate and never more; an idle node earns no
 * credit (a call arriving at an idle node begins when it arrives).
 */
export class RunnerClock {
  /** When the serial runner's current (or last) call is due. */
  #freeAt = Number.NEGATIVE_INFINITY;

  /** The deadline of a call that arrived at `arrivedAt` and takes `ms`; `serial`: it queued behind the runner. */
  begin(arrivedAt: number, ms: number, serial: boolean): number {
    if (!serial) return arrivedAt + ms;
    this.#freeAt = Math.max(arrivedAt, this.#freeAt) + ms;
    return this.#freeAt;
  }

  /** The serial call in service ended early (its client went away, it failed): the runner is free now. */
  abandon(now: number): void {
    this.#freeAt = Math.min(this.#freeAt, now);
  }
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (reason: unknown) => void;
}

/**
 * Admits embed calls to the "runner". Serial mode admits one at a time in arrival
 * order and queues the rest; it never rejects, because real Ollama does not either.
 * Also the source of the in-flight and queued gauges.
 */
export class SerialGate {
  #serial: boolean;
  #running = 0;
  readonly #waiting: Waiter[] = [];
  #maxRunning = 0;
  #maxWaiting = 0;

  constructor(serial: boolean) {
    this.#serial = serial;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  get maxRunning(): number {
    return this.#maxRunning;
  }

  get maxWaiting(): number {
    return this.#maxWaiting;
  }

  /** Restarts the maxima from the current gauges (they are gauges, not counters). */
  resetMaxima(): void {
    this.#maxRunning = this.#running;
    this.#maxWaiting = this.#waiting.length;
  }

  /** Switching serial off lets every queued call through at once. */
  setSerial(serial: boolean): void {
    this.#serial = serial;
    this.#pump();
  }

  /** Resolves when the call may run; the caller must then `release()` exactly once. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#canStart()) {
      this.#start();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const index = this.#waiting.indexOf(waiter);
        if (index >= 0) this.#waiting.splice(index, 1);
        reject(signal.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
      this.#maxWaiting = Math.max(this.#maxWaiting, this.#waiting.length);
    });
  }

  release(): void {
    this.#running--;
    this.#pump();
  }

  #canStart(): boolean {
    return !this.#serial || (this.#running === 0 && this.#waiting.length === 0);
  }

  #start(): void {
    this.#running++;
    this.#maxRunning = Math.max(this.#maxRunning, this.#running);
  }

  #pump(): void {
    while (this.#waiting.length > 0 && (!this.#serial || this.#running === 0)) {
      const next = this.#waiting.shift();
      if (!next) return;
      this.#start();
      next.resolve();
    }
  }
}

/** Parks calls while the node "hangs"; turning the hang off lets them all continue. */
export class HangGate {
  readonly #parked = new Set<() => void>();

  get parked(): number {
    return this.#parked.size;
  }

  wait(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const release = (): void => {
        signal.removeEventListener('abort', onAbort);
        this.#parked.delete(release);
        resolve();
      };
      const onAbort = (): void => {
        this.#parked.delete(release);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#parked.add(release);
    });
  }

  releaseAll(): void {
    for (const release of [...this.#parked]) release();
  }
}

/** Decides which embed calls fail; seeded for reproducible sequences. */
export class FailureDice {
  #next: Random32 | undefined;

  constructor(seed: number | null) {
    this.reseed(seed);
  }

  reseed(seed: number | null): void {
    this.#next = seed === null ? undefined : randomFromSeed(seed);
  }

  /** True when this call should fail. Rates 0 and 1 never draw, so they do not advance the sequence. */
  roll(rate: number): boolean {
    if (rate <= 0) return false;
    if (rate >= 1) return true;
    const draw = this.#next ? this.#next() / 2 ** 32 : Math.random();
    return draw < rate;
  }
}
