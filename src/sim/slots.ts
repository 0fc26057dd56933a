/**
 * Parallel generation slots, like Ollama's `OLLAMA_NUM_PARALLEL`: up to `slots` generations
 * run at once, the others wait in arrival order (Ollama queues them; it does not refuse).
 * Every wait takes the request's AbortSignal, so a client that goes away leaves no waiter.
 */

export class SlotGate {
  #slots: number;
  #running = 0;
  #maxRunning = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(slots: number) {
    this.#slots = slots;
  }

  get running(): number {
    return this.#running;
  }

  get maxRunning(): number {
    return this.#maxRunning;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  resetMaxima(): void {
    this.#maxRunning = this.#running;
  }

  setSlots(slots: number): void {
    this.#slots = slots;
    this.#pump();
  }

  /** Resolves when a slot is the caller's; the caller must then `release()` exactly once. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.#running < this.#slots && this.#waiting.length === 0) {
      this.#start();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const at = this.#waiting.indexOf(grant);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }

  release(): void {
    this.#running--;
    this.#pump();
  }

  #start(): void {
    this.#running++;
    this.#maxRunning = Math.max(this.#maxRunning, this.#running);
  }

  #pump(): void {
    while (this.#running < this.#slots && this.#waiting.length > 0) {
      const next = this.#waiting.shift()!;
      this.#start();
      next();
    }
  }
}
