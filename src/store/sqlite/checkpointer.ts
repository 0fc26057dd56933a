/**
 * WAL checkpoints off the event loop. With automatic checkpoints, the commit that crosses
 * the threshold copies the WAL into the database file on the main thread, stalling every
 * request for tens of milliseconds and halving write throughput. Instead the main
 * connection never checkpoints, and a worker thread with its own connection runs PASSIVE
 * checkpoints on a timer (PASSIVE never blocks writers or readers).
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 1000');
const run = () => { try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (error) { parentPort.postMessage(String(error)); } };
const timer = setInterval(run, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  run();
  db.close();
  parentPort.close();
});
`;

export class Checkpointer {
  private readonly worker: Worker;
  private stopped: Promise<void> | undefined;

  constructor(file: string, intervalMs: number, onError: (message: string) => void) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, intervalMs, driver } });
    this.worker.on('message', (message: string) => onError(message));
    this.worker.on('error', (error) => onError(String(error)));
    this.worker.unref();
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
