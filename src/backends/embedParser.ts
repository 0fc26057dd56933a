/**
 * Parses large `/api/embed` answers in a worker thread. Reading 64 vectors of 768 floats is
 * about half a megabyte of JSON; JSON.parse and the float32 conversion were a third of the
 * gateway's main-thread time with fast nodes, and the main thread also has to write the
 * vectors to the store. The raw bytes are transferred (not copied) to the worker, and one
 * Float32Array holding every vector is transferred back.
 */
import { Worker } from 'node:worker_threads';
import { badElement, jsonToFloat32 } from './vectorCheck.js';

/** Answers smaller than this are parsed inline: the round trip would cost more than it saves. */
export const OFFLOAD_MIN_BYTES = 64 * 1024;

export interface ParsedEmbeddings {
  readonly vectors: Float32Array[];
  readonly promptEvalCount?: unknown;
  readonly loadDuration?: unknown;
}

export type ParseFailure =
  | { readonly kind: 'json'; readonly message: string }
  | { readonly kind: 'count'; readonly got: number | null }
  /** A vector that is not a list of numbers, or of another length than the first: `what` completes "returned ...". */
  | { readonly kind: 'shape'; readonly what: string };

export class EmbedParseError extends Error {
  constructor(readonly failure: ParseFailure) {
    super(`embed answer could not be read (${failure.kind})`);
  }
}

// The element check is vectorCheck.ts's own function, so both parsers apply the same rule.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const jsonToFloat32 = ${jsonToFloat32.toString()};
const badElement = ${badElement.toString()};
const decoder = new TextDecoder();
parentPort.on('message', ({ id, bytes, expected }) => {
  let parsed;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    parentPort.postMessage({ id, failure: { kind: 'json', message: String(error && error.message) } });
    return;
  }
  const list = parsed && parsed.embeddings;
  if (!Array.isArray(list) || list.length !== expected) {
    parentPort.postMessage({ id, failure: { kind: 'count', got: Array.isArray(list) ? list.length : null } });
    return;
  }
  const dims = list.length > 0 && Array.isArray(list[0]) ? list[0].length : 0;
  const out = new Float32Array(list.length * dims);
  for (let i = 0; i < list.length; i++) {
    const v = list[i];
    let what;
    if (!Array.isArray(v) || dims === 0) what = 'an embedding that is not a list of numbers';
    else if (v.length !== dims) what = 'embeddings of different lengths in one answer (' + dims + ' and ' + v.length + ')';
    else {
      const bad = jsonToFloat32(v, out, i * dims);
      if (bad >= 0) what = badElement(v, bad);
    }
    if (what !== undefined) {
      parentPort.postMessage({ id, failure: { kind: 'shape', what } });
      return;
    }
  }
  parentPort.postMessage({ id, dims, buffer: out.buffer, promptEvalCount: parsed.prompt_eval_count, loadDuration: parsed.load_duration }, [out.buffer]);
});
`;

interface Answer {
  id: number;
  failure?: ParseFailure;
  dims?: number;
  buffer?: ArrayBuffer;
  promptEvalCount?: unknown;
  loadDuration?: unknown;
}

class EmbedParserThread {
  private worker: Worker | undefined;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (p: ParsedEmbeddings) => void; reject: (e: Error) => void }>();

  parse(bytes: ArrayBuffer, expected: number): Promise<ParsedEmbeddings> {
    const worker = this.thread();
    const id = this.nextId++;
    return new Promise<ParsedEmbeddings>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      // Keep the process alive only while a parse is pending.
      if (this.waiting.size === 1) worker.ref();
      worker.postMessage({ id, bytes, expected }, [bytes]);
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on('message', (answer: Answer) => this.settle(answer));
    worker.on('error', (error) => this.failAll(error));
    worker.on('exit', () => {
      this.worker = undefined;
      this.failAll(new Error('the embed parser thread exited'));
    });
    this.worker = worker;
    return worker;
  }

  private settle(answer: Answer): void {
    const waiter = this.waiting.get(answer.id);
    if (!waiter) return;
    this.waiting.delete(answer.id);
    if (this.waiting.size === 0) this.worker?.unref();
    if (answer.failure) return waiter.reject(new EmbedParseError(answer.failure));
    const dims = answer.dims ?? 0;
    const all = new Float32Array(answer.buffer ?? new ArrayBuffer(0));
    const vectors = Array.from({ length: dims === 0 ? 0 : all.length / dims }, (_, i) => all.subarray(i * dims, (i + 1) * dims));
    waiter.resolve({ vectors, promptEvalCount: answer.promptEvalCount, loadDuration: answer.loadDuration });
  }

  private failAll(error: Error): void {
    for (const waiter of this.waiting.values()) waiter.reject(error);
    this.waiting.clear();
  }
}

/** One parser thread per process, started on first use. */
export const embedParser = new EmbedParserThread();
