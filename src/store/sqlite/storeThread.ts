/**
 * The store's writer thread (docs/ARCHITECTURE.md, "The store's writer thread"): the one
 * writing SqliteJobStore and its SqliteControlStore, with the disk guard, the checkpointer and
 * the WAL bound, run here unchanged. Calls come in order and each one starts in that order
 * (the store keeps writes in call order itself); an answer is posted once the transaction
 * has committed, with the store's health when it changed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { StoreHealth } from '../types.js';
import { SqliteControlStore } from './controlStore.js';
import { openSqliteStore } from './sqliteStore.js';
import { isPacked, packDocuments, toWire, unpackOutcome, type Call, type Reply, type ThreadOptions } from './storeWire.js';

const port = parentPort!;
const options = workerData as ThreadOptions;
const post = (reply: Reply): void => port.postMessage(reply);

function open(): { jobs: Record<string, unknown>; control: Record<string, unknown>; close(): Promise<void>; health(): StoreHealth; file: string } | undefined {
  try {
    const store = openSqliteStore(options.dataDir, {
      cache: options.cache,
      onError: (message) => post({ log: `checkpoint: ${message}` }),
      ...(options.walLimitBytes === undefined ? {} : { walLimitBytes: options.walLimitBytes }),
      ...(options.reserveBytes === undefined ? {} : { reserveBytes: options.reserveBytes }),
    });
    const control = new SqliteControlStore(store);
    return {
      jobs: store as unknown as Record<string, unknown>,
      control: control as unknown as Record<string, unknown>,
      close: () => store.close(),
      health: () => store.health(),
      file: store.database.name,
    };
  } catch (error) {
    post({ openError: toWire(error) });
    return undefined;
  }
}

const opened = open();
if (opened) {
  let lastHealth = JSON.stringify(opened.health());
  post({ opened: true, file: opened.file, health: opened.health() });
  /** The store's health, when it changed since the last answer said it. */
  const healthChange = (): StoreHealth | undefined => {
    let health: StoreHealth;
    try {
      health = opened.health();
    } catch (error) {
      health = { writable: false, reason: (error as Error).message };
    }
    const text = JSON.stringify(health);
    if (text === lastHealth) return undefined;
    lastHealth = text;
    return health;
  };
  /** Starts one call, in the order the calls came (a write waiting on a WAL reset keeps its turn); answers once it is done. */
  const start = ({ id, target, method, args }: Call): void => {
    let answer: Promise<unknown>;
    try {
      const object = target === 'jobs' ? opened.jobs : opened.control;
      const fn = object[method] as ((...a: unknown[]) => Promise<unknown>) | undefined;
      if (typeof fn !== 'function') throw new Error(`the store thread has no method ${target}.${method}`);
      answer = Promise.resolve(fn.apply(object, args.map((arg) => (isPacked(arg) ? unpackOutcome(arg) : arg))));
    } catch (error) {
      answer = Promise.reject(error);
    }
    answer.then(
      (result) => {
        const health = healthChange();
        const value = target === 'jobs' && method === 'pendingDocuments' ? packDocuments(result as { index: number; text: string }[]) : result;
        try {
          post({ id, value, ...(health ? { health } : {}) });
        } catch (error) {
          // An answer that cannot be cloned is a bug of ours: it reaches the caller as an error.
          post({ id, error: toWire(error) });
        }
      },
      (error: unknown) => {
        const health = healthChange();
        post({ id, error: toWire(error), ...(health ? { health } : {}) });
      },
    );
  };
  let closing = false;
  const close = (): void => {
    if (closing) return;
    closing = true;
    void opened.close().finally(() => {
      post({ closed: true });
      port.close();
    });
  };
  /**
   * What came and is not started yet, in order. Calls arrive a turn's worth at a time
   * (threadedStore.ts, flush); each one starts in its own turn of this thread's loop, so the
   * answers of those before it are posted first (a head start's `cachedAmong` is not held behind
   * the admission posted with it).
   */
  const queue: (Call | 'close')[] = [];
  const next = (): void => {
    const item = queue.shift();
    if (item === undefined) return;
    if (item === 'close') close();
    else start(item);
    if (queue.length > 0) setImmediate(next);
  };
  port.on('message', (message: readonly Call[] | 'close' | 'health' | 'crash') => {
    // A thread that dies, for test/store-thread.test.ts: the calls behind this one are never answered.
    if (message === 'crash') throw new Error('the store thread was asked to crash');
    if (message === 'health') {
      // Always answered (id -1): the main thread asks again only once it has its answer.
      const health = healthChange();
      post({ id: -1, ...(health ? { health } : {}) });
      return;
    }
    const idle = queue.length === 0;
    if (message === 'close') queue.push(message);
    else for (const call of message) queue.push(call);
    if (idle) next();
  });
} else {
  port.close();
}
