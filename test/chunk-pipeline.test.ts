/**
 * The chunk pipeline's rules (src/execution/chunkProcessor.ts), one test each, on an in-memory
 * JobStore and scripted backends behind the real pool: pure logic, no network.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendError } from '../src/backends/errors.js';
import { BackendPool, type Lease } from '../src/backends/pool.js';
import type { BackendProbe, EmbeddingBackend, EmbedRequest, EmbedResult } from '../src/backends/types.js';
import { ChunkProcessor, type ChunkTask, type JobMeta } from '../src/execution/chunkProcessor.js';
import type { ChunkOutcome, GenerationOutcome, JobRecord } from '../src/jobs/model.js';
import { Readable } from 'node:stream';
import type { ForwardedResponse, GenerationPath } from '../src/backends/generation.js';
import type { JobStatus } from '../src/jobs/state.js';
import { silentLogger } from '../src/logger.js';
import { StoreError } from '../src/store/errors.js';
import type { JobStore } from '../src/store/types.js';

type Behaviour = (request: EmbedRequest) => Promise<EmbedResult> | EmbedResult;

/** A backend whose answers the test scripts; it records the inputs of every call. */
class ScriptedBackend implements EmbeddingBackend {
  readonly kind = 'ollama' as const;
  readonly maxConcurrency = 4;
  readonly calls: string[][] = [];
  behaviour: Behaviour = (request) => ({ vectors: request.inputs.map(() => new Float32Array([1, 2])) });
  constructor(readonly id: string) {}
  async embed(request: EmbedRequest): Promise<EmbedResult> {
    this.calls.push([...request.inputs]);
    return this.behaviour(request);
  }
  async probe(): Promise<BackendProbe> {
    return { healthy: true, models: ['m:latest'] };
  }
  async close(): Promise<void> {}
}

/** Just what the pipeline uses of a store, in memory; `fail` makes the next writes throw. */
class MemoryStore {
  status: JobStatus = 'running';
  readonly done = new Map<number, Float32Array>();
  readonly failed = new Map<number, string>();
  readonly generated = new Map<number, string>();
  fail: Error | undefined;
  readFails: Error | undefined;
  constructor(readonly texts: string[]) {}

  asJobStore(): JobStore {
    const unused = (): never => {
      throw new Error('not used by the pipeline');
    };
    return {
      pendingDocuments: async (_id: string, from: number, to: number) => {
        if (this.readFails) throw this.readFails;
        if (this.status !== 'running') return [];
        const out: { index: number; text: string }[] = [];
        for (let i = from; i < Math.min(to, this.texts.length); i++) if (!this.done.has(i) && !this.failed.has(i)) out.push({ index: i, text: this.texts[i]! });
        return out;
      },
      recordChunk: async (_id: string, outcome: ChunkOutcome) => {
        if (this.fail) throw this.fail;
        if (this.status !== 'running') return false;
        for (const d of outcome.done) this.done.set(d.index, d.vector);
        for (const f of outcome.failed) this.failed.set(f.index, f.code);
        return true;
      },
      recordGenerations: async (_id: string, outcome: GenerationOutcome) => {
        if (this.fail) throw this.fail;
        if (this.status !== 'running') return false;
        for (const d of outcome.done) this.generated.set(d.index, d.result);
        for (const f of outcome.failed) this.failed.set(f.index, f.code);
        return true;
      },
      status: async () => this.status,
      get: async () => this.record(),
      transition: async (_id: string, to: JobStatus) => {
        this.status = to;
        return this.record();
      },
      admit: unused,
      admitRetry: unused,
      list: unused,
      readResults: unused,
      failureSummary: unused,
      purge: unused,
      sweepExpired: unused,
      unfinishedJobs: unused,
      counters: unused,
      cacheStats: unused,
      close: async () => {},
    };
  }

  private record(): JobRecord {
    return {
      id: 'job',
      owner: 'o',
      type: 'embed',
      model: 'm',
      status: this.status,
      createdAt: 0,
      startedAt: 0,
      completedAt: null,
      totalItems: this.texts.length,
      completedItems: this.done.size,
      failedItems: this.failed.size,
      dimensions: null,
      metadata: {},
      options: { truncate: true },
      errors: [],
      retryOf: null,
    };
  }
}

const JOB: JobMeta = { model: 'm', options: { truncate: true } };

async function setup(t: import('node:test').TestContext, texts: string[], nodes = 1, breaker = {}) {
  const backends = Array.from({ length: nodes }, (_, i) => new ScriptedBackend(`node${i}`));
  const pool = new BackendPool(backends, { healthIntervalMs: 60_000, breaker });
  await pool.start();
  t.after(() => pool.close());
  const store = new MemoryStore(texts);
  const processor = new ChunkProcessor(store.asJobStore(), pool, { maxCalls: 8, chunkRetries: 2 }, silentLogger());
  const lease = (avoid?: readonly string[]): Lease => {
    const granted = pool.tryAcquire('m', avoid ? new Set(avoid) : undefined);
    assert.ok(granted, 'a slot');
    return granted;
  };
  const task = (start: number, end: number, extra: Partial<ChunkTask> = {}): ChunkTask => ({ jobId: 'job', start, end, attempt: 0, ...extra });
  return { backends, pool, store, processor, lease, task };
}

const poisoned = (marker: string, error: () => never): Behaviour => (request) => {
  if (request.inputs.some((text) => text.includes(marker))) error();
  return { vectors: request.inputs.map(() => new Float32Array([1, 2])) };
};
const server500 = (): never => {
  throw new BackendError('BACKEND_UNAVAILABLE', 'answered 500: failed to encode response: json: unsupported value: NaN', { status: 500 });
};

test('a successful call records every vector in document order', async (t) => {
  const { store, processor, lease, task } = await setup(t, ['a', 'b', 'c']);
  const result = await processor.step(task(0, 3), JOB, lease());
  assert.equal(result.kind, 'done');
  assert.deepEqual([...store.done.keys()].sort(), [0, 1, 2]);
});

test('status re-check: a job no longer running gets no backend call', async (t) => {
  const { backends, store, processor, lease, task } = await setup(t, ['a', 'b']);
  store.status = 'cancelled';
  assert.equal((await processor.step(task(0, 2), JOB, lease())).kind, 'done');
  assert.equal(backends[0]!.calls.length, 0);
});

test('a node-level failure (timeout) is retried after a backoff, then fails the documents with its code', async (t) => {
  const { backends, store, processor, lease, task } = await setup(t, ['a', 'b']);
  backends[0]!.behaviour = () => {
    throw new BackendError('BACKEND_TIMEOUT', 'no answer');
  };
  const first = await processor.step(task(0, 2), JOB, lease());
  assert.equal(first.kind, 'retry');
  assert.ok(first.kind === 'retry' && first.delayMs > 0 && first.task.attempt === 1);
  const last = await processor.step(task(0, 2, { attempt: 2 }), JOB, lease());
  assert.equal(last.kind, 'done');
  assert.deepEqual([...store.failed.values()], ['BACKEND_TIMEOUT', 'BACKEND_TIMEOUT']);
});

test('a 4xx is bisected at once, without a retry of the whole range', async (t) => {
  const { backends, processor, lease, task } = await setup(t, ['a', 'bad', 'c', 'd']);
  backends[0]!.behaviour = poisoned('bad', () => {
    throw new BackendError('INPUT_REJECTED', 'answered 400', { status: 400 });
  });
  const result = await processor.step(task(0, 4), JOB, lease());
  assert.equal(result.kind, 'split');
  assert.ok(result.kind === 'split');
  assert.deepEqual(result.parts.map((p) => [p.start, p.end]), [[0, 2], [2, 4]]);
});

test('a 5xx that may be the documents\' is retried once, then bisected', async (t) => {
  const { backends, processor, lease, task } = await setup(t, ['a', 'bad', 'c', 'd']);
  backends[0]!.behaviour = poisoned('bad', server500);
  const first = await processor.step(task(0, 4), JOB, lease());
  assert.equal(first.kind, 'retry');
  assert.ok(first.kind === 'retry');
  const second = await processor.step(first.task, JOB, lease());
  assert.equal(second.kind, 'split');
});

test('a bad vector (the pool\'s check) is a failure that may be the documents\': retried, bisected, then INVALID_VECTOR', async (t) => {
  const { backends, pool, store, processor, lease, task } = await setup(t, ['a', 'bad']);
  backends[0]!.behaviour = (request) => ({ vectors: request.inputs.map((text) => new Float32Array(text === 'bad' ? [Number.NaN, 1] : [1, 2])) });
  let next: ChunkTask[] = [task(0, 2)];
  for (let round = 0; round < 6 && next.length > 0; round++) {
    const current = next.shift()!;
    const result = await processor.step(current, JOB, lease(current.avoid));
    if (result.kind === 'split') next.push(...result.parts);
    else if (result.kind === 'retry') next.push(result.task);
  }
  assert.deepEqual([...store.done.keys()], [0]);
  assert.equal(store.failed.get(1), 'INVALID_VECTOR');
  // The node is charged for every bad answer, as for any other failure.
  assert.ok((pool.snapshot()[0]!.errors_by_code['INVALID_VECTOR'] ?? 0) >= 2);
});

test('a single failing document is tried on another node serving the model before it fails', async (t) => {
  const { backends, store, processor, lease, task } = await setup(t, ['bad'], 2);
  const [first, second] = backends as [ScriptedBackend, ScriptedBackend];
  first.behaviour = poisoned('bad', server500);
  second.behaviour = poisoned('bad', server500);
  let current = task(0, 1, { attempt: 1 });
  const tried = new Set<string>();
  for (let round = 0; round < 4; round++) {
    const granted = lease(current.avoid);
    tried.add(granted.backendId);
    const result = await processor.step(current, JOB, granted);
    if (result.kind !== 'retry') break;
    current = result.task;
  }
  assert.deepEqual([...tried].sort(), ['node0', 'node1']);
  assert.equal(store.failed.get(0), 'BACKEND_UNAVAILABLE');
});

test('a node whose circuit is open moves its work to another node, not bisecting it', async (t) => {
  const { backends, pool, processor, lease, task } = await setup(t, ['a', 'b', 'c', 'd'], 2, { failureThreshold: 1 });
  backends[0]!.behaviour = server500;
  const granted = pool.tryAcquire('m', new Set(['node1']))!;
  assert.equal(granted.backendId, 'node0');
  const result = await processor.step(task(0, 4, { attempt: 1 }), JOB, granted);
  assert.equal(result.kind, 'retry');
  assert.ok(result.kind === 'retry' && result.task.avoid?.includes('node0') && result.task.end - result.task.start === 4);
  const moved = lease(result.task.avoid);
  assert.equal(moved.backendId, 'node1');
  moved.release();
});

test('with one node, a node failing every call is bisected like any failing documents (no wait that could never end)', async (t) => {
  const { backends, pool, processor, lease, task } = await setup(t, ['a', 'b', 'c', 'd'], 1, { failureThreshold: 1 });
  backends[0]!.behaviour = server500;
  const result = await processor.step(task(0, 4, { attempt: 1 }), JOB, lease());
  assert.ok(pool.circuitOpen('node0'));
  assert.equal(result.kind, 'split');
})

test('a store fault while recording is never a backend error: nothing is failed, the node is not charged, the task waits', async (t) => {
  const { pool, store, processor, lease, task } = await setup(t, ['a', 'b']);
  store.fail = new StoreError('STORE_FULL', 'database or disk is full');
  const result = await processor.step(task(0, 2), JOB, lease());
  assert.equal(result.kind, 'wait');
  assert.ok(result.kind === 'wait' && result.reason === 'store_full' && result.task.attempt === 0);
  assert.equal(store.failed.size, 0);
  const [node] = pool.snapshot();
  assert.equal(node!.errors, 0);
  store.fail = undefined;
  assert.equal((await processor.step(task(0, 2), JOB, lease())).kind, 'done');
  assert.equal(store.done.size, 2);
});

test('a store fault while reading releases the slot and waits', async (t) => {
  const { pool, store, processor, lease, task } = await setup(t, ['a']);
  store.readFails = new Error('SQLITE_IOERR: disk I/O error');
  const result = await processor.step(task(0, 1), JOB, lease());
  assert.ok(result.kind === 'wait' && result.reason === 'store_unavailable');
  assert.equal(pool.snapshot()[0]!.in_flight, 0);
});

test('a cancelled call (aborted) is dropped: nothing recorded, nothing failed', async (t) => {
  const { backends, store, processor, lease, task } = await setup(t, ['a']);
  backends[0]!.behaviour = () => {
    throw new BackendError('CANCELLED', 'aborted');
  };
  assert.equal((await processor.step(task(0, 1), JOB, lease())).kind, 'done');
  assert.equal(store.done.size + store.failed.size, 0);
});

test('MODEL_NOT_FOUND from one node while another serves the model retries at once', async (t) => {
  const { backends, processor, lease, task } = await setup(t, ['a'], 2);
  for (const b of backends) {
    b.behaviour = () => {
      throw new BackendError('MODEL_NOT_FOUND', 'not found', { status: 404 });
    };
  }
  const result = await processor.step(task(0, 1), JOB, lease());
  assert.ok(result.kind === 'retry' && result.delayMs === 0 && result.task.attempt === 1);
});

test('the last step of a job ends it (finishIfDone), whoever runs it', async (t) => {
  const { store, processor, lease, task } = await setup(t, ['a']);
  await processor.step(task(0, 1), JOB, lease());
  assert.equal(await processor.finishIfDone('job', 1000), true);
  assert.equal(store.status, 'completed');
});

/** A node that also generates: `status` scripts its answer to each /api/generate call. */
class GeneratingBackend extends ScriptedBackend {
  readonly generationParallel = 1;
  readonly prompts: string[] = [];
  status = 200;
  canGenerate(path: GenerationPath): boolean {
    return path === '/api/generate';
  }
  async forward(_path: GenerationPath, body: string): Promise<ForwardedResponse> {
    const prompt = (JSON.parse(body) as { prompt: string }).prompt;
    this.prompts.push(prompt);
    const text = this.status === 200 ? JSON.stringify({ response: `${this.id}: ${prompt}`, done_reason: 'stop', eval_count: 1 }) : '{"error":"boom"}';
    return { status: this.status, contentType: 'application/json', body: Object.assign(Readable.from([Buffer.from(text)]), { text: async () => text }) };
  }
  async forwardedError(response: ForwardedResponse): Promise<BackendError> {
    return new BackendError('BACKEND_UNAVAILABLE', `answered ${response.status}`, { status: response.status });
  }
}

test('a generation item goes through the same rules: one item per call, a 500 retried once on another node, the result recorded', async (t) => {
  const backends = [new GeneratingBackend('gen0'), new GeneratingBackend('gen1')];
  const pool = new BackendPool(backends, { healthIntervalMs: 60_000 });
  await pool.start();
  t.after(() => pool.close());
  const store = new MemoryStore(['{"prompt":"p0"}', '{"prompt":"p1"}']);
  const processor = new ChunkProcessor(store.asJobStore(), pool, { maxCalls: 8, chunkRetries: 2 }, silentLogger());
  const job: JobMeta = { model: 'm', options: { truncate: true }, type: 'generate' };
  const slot = (avoid?: readonly string[]) => {
    const granted = pool.tryAcquireGeneration('m', '/api/generate', avoid ? new Set(avoid) : undefined);
    assert.ok(granted, 'a generation slot');
    return granted;
  };
  const first = slot();
  const failing = backends.find((b) => b.id === first.backendId)!;
  failing.status = 500;
  // A range of two items: one call takes one item, the other stays pending.
  const failed = await processor.step({ jobId: 'job', start: 0, end: 2, attempt: 0 }, job, first);
  assert.equal(failed.kind, 'retry');
  assert.ok(failed.kind === 'retry');
  assert.deepEqual([failed.task.start, failed.task.end, failed.task.attempt, failed.task.avoid], [0, 2, 1, [failing.id]]);
  assert.deepEqual(failing.prompts, ['p0']);
  const again = slot(failed.task.avoid);
  assert.notEqual(again.backendId, failing.id, 'the retry goes to the other node');
  assert.equal((await processor.step(failed.task, job, again)).kind, 'done');
  assert.deepEqual([...store.generated.keys()], [0]);
  assert.equal(JSON.parse(store.generated.get(0)!).response, `${again.backendId}: p0`);
  assert.equal(store.failed.size, 0);
});
