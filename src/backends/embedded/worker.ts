/**
 * Worker-thread entry of the embedded backend: holds one model instance, loaded on the
 * first call, and embeds one call at a time.
 */
import { parentPort } from 'node:worker_threads';
import { loadModel, type LoadedModel } from './model.js';
import type { FromWorker, ToWorker } from './protocol.js';

if (!parentPort) throw new Error('The embedded backend worker must run in a worker thread');
const port = parentPort;

let model: Promise<LoadedModel> | undefined;
/** The call in progress; the pool sends one at a time. */
let running: number | undefined;
let cancelRequested = false;

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function getModel(): Promise<LoadedModel> {
  model ??= loadModel().catch((error: unknown) => {
    // A failed load is retried by the next call instead of poisoning the worker.
    model = undefined;
    throw error;
  });
  return model;
}

async function embed(id: number, texts: readonly string[]): Promise<void> {
  running = id;
  cancelRequested = false;
  try {
    await embedCurrent(id, texts);
  } finally {
    running = undefined;
  }
}

async function embedCurrent(id: number, texts: readonly string[]): Promise<void> {
  let loaded: LoadedModel;
  try {
    loaded = await getModel();
  } catch (error) {
    post({ type: 'error', id, code: 'BACKEND_UNAVAILABLE', message: `Embedded model failed to load: ${String(error)}` });
    return;
  }
  try {
    if (texts.some((text) => text.length === 0)) {
      post({ type: 'error', id, code: 'INPUT_REJECTED', message: 'The embedded model cannot embed an empty text' });
      return;
    }
    const vectors = await loaded.embed(texts, () => cancelRequested);
    if (vectors === undefined) {
      post({ type: 'cancelled', id });
      return;
    }
    post({ type: 'result', id, vectors }, vectors.map((vector) => vector.buffer as ArrayBuffer));
  } catch (error) {
    post({ type: 'error', id, code: 'BACKEND_UNAVAILABLE', message: `Embedded model failed: ${String(error)}` });
  }
}

port.on('message', (message: ToWorker) => {
  // A cancel can cross the result on the way: then it names a finished call and is moot.
  if (message.type === 'cancel') cancelRequested ||= message.id === running;
  else void embed(message.id, message.texts);
});
