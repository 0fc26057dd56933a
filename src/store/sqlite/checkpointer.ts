/**
 * WAL checkpoints off the event loop. With automatic checkpoints, the commit that crosses
 * the threshold copies the WAL into the database file on the main thread, stalling every
 * request for tens of milliseconds and halving write throughput. Instead the main
 * connection never checkpoints, and a worker thread with its own connection runs PASSIVE
 * checkpoints on a timer (PASSIVE never blocks writers or readers).
 *
 * PASSIVE alone does not bound the WAL: while chunks are written back to back, every
 * checkpoint ends a few frames behind the writer, so the WAL is never reset and grows by
 * every byte written (measured: 1.49 GB for 50,000 768-dim documents with the content cache
 * on, which writes each vector twice; users saw 1.3-2.1 GB). So once the WAL is over its
 * limit the store holds its next writes (they wait on a promise; the event loop keeps
 * serving reads) and asks this worker for a RESTART checkpoint, which copies the frames
 * PASSIVE left and makes the next write start the WAL over from its first byte (the file is
 * kept, at most journal_size_limit, and overwritten); the writes then go on. That is the
 * back-pressure that bounds the WAL: writers never outrun the checkpoint by more than the limit.
 * RESTART rather than TRUNCATE: the writes wait only for the copy and its sync, not for the
 * file to be cut and grown again (measured with `npm run bench -- wal`, 50,000 x 768, cache
 * on, 64 MiB limit: 13,500-14,700 -> 17,300-26,700 vectors/s; a 96 MiB limit then 20,700-27,900). TRUNCATE is asked for
 * when the disk is short of room, where the WAL's bytes must go back to the file system.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
let lastError = '';
const report = (message) => { if (message !== lastError && message !== '') parentPort.postMessage({ error: message }); lastError = message; };
const checkpoint = (mode) => {
  try { const [result] = db.pragma('wal_checkpoint(' + mode + ')'); report(''); return result; }
  catch (error) { report(String(error)); return undefined; }
};
const timer = setInterval(() => checkpoint('PASSIVE'), workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'RESTART' || message === 'TRUNCATE') {
    const result = checkpoint(message);
    return parentPort.postMessage({ truncated: result !== undefined && result.busy === 0 });
  }
  if (message !== 'stop') return;
  clearInterval(timer);
  checkpoint('PASSIVE');
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  readonly intervalMs: number;
}

export class Checkpointer {
  private readonly worker: Worker;
  private stopped: Promise<void> | undefined;
  private waiting: ((truncated: boolean) => void)[] = [];
  private exited = false;

  /** `onError` gets each new failure of the worker once. */
  constructor(file: string, options: CheckpointerOptions, onError: (message: string) => void) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, ...options, driver } });
    this.worker.on('message', (message: { error?: string; truncated?: boolean }) => {
      if (message.error !== undefined) onError(message.error);
      if (message.truncated !== undefined) this.waiting.shift()?.(message.truncated);
    });
    this.worker.on('error', (error) => {
      onError(String(error));
      this.release();
    });
    this.worker.on('exit', () => {
      this.exited = true;
      this.release();
    });
    this.worker.unref();
  }

  /**
   * A RESTART (the WAL is reused from its start) or TRUNCATE (cut to zero bytes) checkpoint in
   * the worker; resolves true once every frame is in the database, false if not (never rejects).
   */
  truncate(mode: 'RESTART' | 'TRUNCATE' = 'TRUNCATE'): Promise<boolean> {
    // A thread that died (its error was reported) never answers: the writes must not wait on it.
    if (this.stopped || this.exited) return Promise.resolve(false);
    // Writes wait on the answer: the thread must keep the process alive meanwhile.
    this.worker.ref();
    return new Promise<boolean>((resolve) => {
      this.waiting.push((truncated) => {
        if (this.waiting.length === 0 && !this.stopped) this.worker.unref();
        resolve(truncated);
      });
      this.worker.postMessage(mode);
    });
  }

  private release(): void {
    for (const resolve of this.waiting.splice(0)) resolve(false);
  }

  /** Runs a last checkpoint and ends the thread; idempotent. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
      // Keep the process alive until the last checkpoint is done (the thread is unref'd otherwise).
      this.worker.ref();
      this.worker.postMessage('stop');
    });
    return this.stopped;
  }
}
