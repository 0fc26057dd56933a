/**
 * A small pool of worker threads speaking the protocol in `protocol.ts`: one call per
 * worker at a time, a FIFO queue in front, workers started on demand and replaced after
 * a crash. Kept apart from the model so that its failure paths can be tested with
 * throwaway workers.
 */
import type { Worker } from 'node:worker_threads';
import { BackendError } from '../errors.js';
import type { FromWorker, ToWorker } from './protocol.js';

export interface WorkerPoolOptions {
  /** Most workers alive at once. */
  readonly size: number;
  /** Starts one worker thread. */
  readonly spawn: () => Worker;
  /** Names the pool in error messages. */
  readonly label: string;
}

interface Call {
  readonly id: number;
  readonly texts: readonly string[];
  readonly resolve: (vectors: Float32Array[]) => void;
  readonly reject: (error: BackendError) => void;
  readonly signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  settled: boolean;
  /** The worker running it, once dispatched. */
  slot: Slot | undefined;
}

interface Slot {
  readonly worker: Worker;
  call: Call | undefined;
  dead: boolean;
}

export class WorkerPool {
  private readonly options: WorkerPoolOptions;
  private readonly slots: Slot[] = [];
  private readonly queue: Call[] = [];
  private nextId = 1;
  private closing: Promise<void> | undefined;

  constructor(options: WorkerPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 1) {
      throw new RangeError(`${options.label}: pool size must be a positive integer, got ${options.size}`);
    }
    this.options = options;
  }

  /** Workers currently alive (started and not crashed or terminated). */
  get workerCount(): number {
    return this.slots.length;
  }

  /** Embeds `texts` on the next free worker. Rejects with a BackendError only. */
  run(texts: readonly string[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (this.closing) {
      return Promise.reject(new BackendError('BACKEND_UNAVAILABLE', `${this.options.label} is closed`));
    }
    if (signal?.aborted) {
      return Promise.reject(new BackendError('CANCELLED', `Call to ${this.options.label} was aborted`, { cause: signal.reason }));
    }
    return new Promise<Float32Array[]>((resolve, reject) => {
      const call: Call = { id: this.nextId++, texts, resolve, reject, signal, onAbort: undefined, settled: false, slot: undefined };
      if (signal) {
        call.onAbort = () => this.abort(call);
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      this.queue.push(call);
      this.dispatch();
    });
  }

  /** Terminates every worker; calls not finished yet fail with BACKEND_UNAVAILABLE. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const closed = (): BackendError => new BackendError('BACKEND_UNAVAILABLE', `${this.options.label} was closed`);
      for (const call of this.queue.splice(0)) this.settle(call, closed());
      const slots = this.slots.splice(0);
      for (const slot of slots) {
        slot.dead = true;
        if (slot.call) this.settle(slot.call, closed());
      }
      await Promise.all(slots.map((slot) => slot.worker.terminate()));
    })();
    return this.closing;
  }

  private abort(call: Call): void {
    const index = this.queue.indexOf(call);
    if (index >= 0) this.queue.splice(index, 1);
    // A running call keeps its worker busy until the worker answers; only the answer is dropped.
    if (call.slot && !call.slot.dead) this.post(call.slot, { type: 'cancel', id: call.id });
    this.settle(call, new BackendError('CANCELLED', `Call to ${this.options.label} was aborted`, { cause: call.signal?.reason }));
  }

  private settle(call: Call, outcome: Float32Array[] | BackendError): void {
    if (call.settled) return;
    call.settled = true;
    if (call.onAbort) call.signal?.removeEventListener('abort', call.onAbort);
    if (outcome instanceof BackendError) call.reject(outcome);
    else call.resolve(outcome);
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closing) {
      const slot = this.slots.find((candidate) => candidate.call === undefined) ?? this.spawn();
      if (!slot) return;
      const call = this.queue.shift() as Call;
      slot.call = call;
      call.slot = slot;
      // Busy workers keep the process alive for their caller; idle ones must not hold it open.
      slot.worker.ref();
      this.post(slot, { type: 'embed', id: call.id, texts: call.texts });
    }
  }

  private spawn(): Slot | undefined {
    if (this.slots.length >= this.options.size) return undefined;
    let worker: Worker;
    try {
      worker = this.options.spawn();
    } catch (error) {
      const failure = new BackendError('BACKEND_UNAVAILABLE', `${this.options.label} could not start a worker`, { cause: error });
      for (const call of this.queue.splice(0)) this.settle(call, failure);
      return undefined;
    }
    const slot: Slot = { worker, call: undefined, dead: false };
    worker.unref();
    worker.on('message', (message: FromWorker) => this.onMessage(slot, message));
    worker.on('error', (error) => this.onCrash(slot, error));
    worker.on('messageerror', (error) => this.onCrash(slot, error));
    worker.on('exit', (code) => this.onCrash(slot, new Error(`worker exited with code ${code}`)));
    this.slots.push(slot);
    return slot;
  }

  private post(slot: Slot, message: ToWorker): void {
    try {
      slot.worker.postMessage(message);
    } catch (error) {
      this.onCrash(slot, error);
    }
  }

  private onMessage(slot: Slot, message: FromWorker): void {
    const call = slot.call;
    if (!call || call.id !== message.id) return;
    slot.call = undefined;
    call.slot = undefined;
    slot.worker.unref();
    switch (message.type) {
      case 'result':
        if (message.vectors.length === call.texts.length) this.settle(call, message.vectors);
        else this.settle(call, new BackendError('BACKEND_UNAVAILABLE', `${this.options.label} returned ${message.vectors.length} vectors for ${call.texts.length} inputs`));
        break;
      case 'error':
        this.settle(call, new BackendError(message.code, message.message));
        break;
      case 'cancelled':
        this.settle(call, new BackendError('CANCELLED', `Call to ${this.options.label} was aborted`));
        break;
    }
    this.dispatch();
  }

  private onCrash(slot: Slot, error: unknown): void {
    if (slot.dead) return;
    slot.dead = true;
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
    void slot.worker.terminate().catch(() => undefined);
    const call = slot.call;
    slot.call = undefined;
    if (call) {
      call.slot = undefined;
      const reason = error instanceof Error ? error.message : String(error);
      this.settle(call, new BackendError('BACKEND_UNAVAILABLE', `${this.options.label} worker crashed (${reason})`, { cause: error }));
    }
    // The replacement starts here if calls are waiting, otherwise with the next call.
    this.dispatch();
  }
}
