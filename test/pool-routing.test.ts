/** Routing across nodes: work spreads, the faster node gets more, failing nodes are second choice, breakers open and close. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BackendError } from '../src/backends/errors.js';
import { BackendPool } from '../src/backends/pool.js';
import type { BackendProbe, EmbeddingBackend, EmbedRequest, EmbedResult } from '../src/backends/types.js';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

type Behaviour = (request: EmbedRequest) => Promise<EmbedResult> | EmbedResult;

/** A stand-in backend whose answers the test scripts; counts its calls. */
class FakeBackend implements EmbeddingBackend {
  readonly kind = 'ollama' as const;
  calls = 0;
  models = ['m:latest'];
  behaviour: Behaviour = (request) => ({ vectors: request.inputs.map(() => new Float32Array([1])) });
  constructor(
    readonly id: string,
    readonly maxConcurrency = 2,
  ) {}
  async embed(request: EmbedRequest): Promise<EmbedResult> {
    this.calls++;
    return this.behaviour(request);
  }
  async probe(): Promise<BackendProbe> {
    return { healthy: true, models: this.models };
  }
  async close(): Promise<void> {}
}

const serverError = (): never => {
  throw new BackendError('BACKEND_UNAVAILABLE', 'answered 500', { status: 500 });
};
const request = (inputs = ['a']): EmbedRequest => ({ model: 'm', inputs, options: { truncate: true } });

async function startPool(backends: FakeBackend[], options: Partial<ConstructorParameters<typeof BackendPool>[1]> = {}): Promise<BackendPool> {
  const pool = new BackendPool(backends, { healthIntervalMs: 60_000, ...options });
  await pool.start();
  return pool;
}

test('a node whose call just failed is second choice: the retry goes to the other node', async (t) => {
  const a = new FakeBackend('a');
  const b = new FakeBackend('b');
  const pool = await startPool([a, b]);
  t.after(() => pool.close());
  a.behaviour = serverError;
  const first = pool.tryAcquire('m')!;
  assert.equal(first.backendId, 'a', 'equal cold nodes: the first one in order');
  await assert.rejects(first.embed(request()), BackendError);
  for (let i = 0; i < 4; i++) {
    const lease = pool.tryAcquire('m')!;
    assert.equal(lease.backendId, 'b');
    await lease.embed(request());
  }
  assert.equal(a.calls, 1);
  // While b is full, the failed node is still not used: a retry waits for a good node.
  const held = [pool.tryAcquire('m')!, pool.tryAcquire('m')!];
  assert.deepEqual(held.map((l) => l.backendId), ['b', 'b']);
  assert.equal(pool.tryAcquire('m'), undefined);
  held.forEach((l) => l.release());
});

test('the breaker opens after 3 failures in a row, yet the only node stays usable (panic routing); a half-open breaker admits one trial', async (t) => {
  const a = new FakeBackend('a');
  const pool = await startPool([a], { breaker: { baseCooldownMs: 50 } });
  t.after(() => pool.close());
  a.behaviour = serverError;
  for (let i = 0; i < 2; i++) await assert.rejects(pool.tryAcquire('m')!.embed(request()), BackendError);
  assert.equal(pool.snapshot()[0]!.circuit, 'closed', 'two failures in a row are not enough');
  await assert.rejects(pool.tryAcquire('m')!.embed(request()), BackendError);
  const [node] = pool.snapshot();
  assert.equal(node!.circuit, 'open');
  assert.equal(node!.circuit_opens, 1);
  assert.equal(node!.consecutive_failures, 3);
  assert.equal(node!.errors_by_code.BACKEND_UNAVAILABLE, 3);
  // Every node serving the model is open: it is used anyway, so the scheduler's retry budget decides.
  const panic = pool.tryAcquire('m');
  assert.ok(panic, 'an open breaker on the only node does not stall the jobs');
  panic.release();
  await waitFor(() => (pool.snapshot()[0]!.circuit === 'half_open' ? true : undefined), 'the breaker to half-open');
  const trial = pool.tryAcquire('m')!;
  assert.equal(pool.tryAcquire('m'), undefined, 'one trial call at a time');
  await assert.rejects(trial.embed(request()), BackendError);
  assert.equal(pool.snapshot()[0]!.circuit, 'open', 'a failed trial opens it again');
  assert.equal(pool.snapshot()[0]!.circuit_opens, 2);
  a.behaviour = (r) => ({ vectors: r.inputs.map(() => new Float32Array([1])) });
  await waitFor(() => (pool.snapshot()[0]!.circuit === 'half_open' ? true : undefined), 'the breaker to half-open again');
  await pool.tryAcquire('m')!.embed(request());
  assert.equal(pool.snapshot()[0]!.circuit, 'closed', 'a successful trial closes it');
  assert.equal(pool.snapshot()[0]!.consecutive_failures, 0);
});

test('an open breaker keeps a node out while another node can serve; after the cool-down it gets a trial', async (t) => {
  const a = new FakeBackend('a');
  const b = new FakeBackend('b');
  const pool = await startPool([a, b], { breaker: { failureThreshold: 1, baseCooldownMs: 50 }, recentFailureMs: 1 });
  t.after(() => pool.close());
  a.behaviour = serverError;
  const first = pool.tryAcquire('m')!;
  assert.equal(first.backendId, 'a');
  await assert.rejects(first.embed(request()), BackendError);
  assert.equal(pool.snapshot()[0]!.circuit, 'open');
  const held = [pool.tryAcquire('m')!, pool.tryAcquire('m')!];
  assert.deepEqual(held.map((l) => l.backendId), ['b', 'b']);
  assert.equal(pool.tryAcquire('m'), undefined, 'b is full and a is open: the work waits');
  a.behaviour = (r) => ({ vectors: r.inputs.map(() => new Float32Array([1])) });
  const trial = await waitFor(() => pool.tryAcquire('m'), 'the half-open trial slot');
  assert.equal(trial.backendId, 'a');
  await trial.embed(request());
  assert.equal(pool.snapshot()[0]!.circuit, 'closed');
  held.forEach((l) => l.release());
});

test('a node that answers 404 for a model it listed loses the model until its next probe', async (t) => {
  const a = new FakeBackend('a');
  const b = new FakeBackend('b');
  const pool = await startPool([a, b]);
  t.after(() => pool.close());
  a.behaviour = () => {
    throw new BackendError('MODEL_NOT_FOUND', 'model not found', { status: 404 });
  };
  const first = pool.tryAcquire('m')!;
  assert.equal(first.backendId, 'a');
  await assert.rejects(first.embed(request()), (e: BackendError) => e.code === 'MODEL_NOT_FOUND');
  assert.deepEqual(pool.snapshot()[0]!.models, []);
  assert.equal(pool.snapshot()[0]!.circuit, 'closed', 'a missing model says nothing about the node');
  assert.ok(pool.serves('m'), 'b still serves it');
  const held = [pool.tryAcquire('m')!, pool.tryAcquire('m')!];
  assert.deepEqual(held.map((l) => l.backendId), ['b', 'b']);
  held.forEach((l) => l.release());
  await pool.probeAll();
  assert.deepEqual(pool.snapshot()[0]!.models, ['m:latest']);
});

test('routing prefers the node that will finish soonest: measured time per document and work in flight', async (t) => {
  const fast = new FakeBackend('fast');
  const slow = new FakeBackend('slow');
  const pool = await startPool([slow, fast]);
  t.after(() => pool.close());
  slow.behaviour = async (r) => {
    await new Promise((resolve) => setTimeout(resolve, 30));
    return { vectors: r.inputs.map(() => new Float32Array([1])) };
  };
  // Measure both once.
  await Promise.all([pool.tryAcquire('m')!.embed(request()), pool.tryAcquire('m')!.embed(request())]);
  assert.deepEqual([slow.calls, fast.calls], [1, 1]);
  const next = pool.tryAcquire('m')!;
  assert.equal(next.backendId, 'fast');
  const second = pool.tryAcquire('m')!;
  assert.equal(second.backendId, 'fast', 'one queued on the fast node still beats the slow one');
  const third = pool.tryAcquire('m')!;
  assert.equal(third.backendId, 'slow', 'a full fast node leaves the slow one busy too');
  [next, second, third].forEach((l) => l.release());
});

test('two equal nodes both get work', async (t) => {
  const a = await startSim(t, { delayPerCallMs: 5, serial: true });
  const b = await startSim(t, { delayPerCallMs: 5, serial: true });
  const { url } = await startTestGateway(t, { backend: [a.url, b.url], chunkSize: '5' });
  const { body } = await submit(url, { model: MODEL, documents: docs(200, 'equal') });
  const done = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 200);
  assert.ok(a.stats().embedCalls > 0 && b.stats().embedCalls > 0, `calls: ${a.stats().embedCalls} and ${b.stats().embedCalls}`);
  // Every document reached a node; a few may have reached both: at a job's tail an idle node may
  // take a duplicate of a straggling call (docs/ARCHITECTURE.md, "The tail"), and a duplicate the
  // node finished before the abort arrived is counted by that node too. The job counts each once.
  const sent = a.stats().documents + b.stats().documents;
  assert.ok(sent >= 200, `the nodes embedded ${sent} documents of 200`);
});

test('the faster node gets clearly more documents than the slower one', async (t) => {
  const fast = await startSim(t, { delayPerCallMs: 0 });
  const slow = await startSim(t, { delayPerCallMs: 40 });
  const { url } = await startTestGateway(t, { backend: [slow.url, fast.url], chunkSize: '5' });
  const { body } = await submit(url, { model: MODEL, documents: docs(300, 'speed') });
  const done = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(done.progress.completed_items, 300);
  const [f, s] = [fast.stats().documents, slow.stats().documents];
  // At or above: the idle fast node may also answer a duplicate of the slow node's last chunk (a hedge).
  assert.ok(f + s >= 300, `${f} + ${s} documents embedded`);
  assert.ok(f > 2 * s, `fast node ${f} documents, slow node ${s}`);
  const stats = (await call(`${url}/api/stats`)).body;
  const byUrl = new Map(stats.backends.map((n: { url: string }) => [n.url, n]));
  const fastStats = byUrl.get(fast.url) as { ms_per_document: number; documents: number; circuit: string };
  const slowStats = byUrl.get(slow.url) as { ms_per_document: number; documents: number; circuit: string };
  // The gateway counts the documents of answers it took; a duplicate it aborted may have been answered already.
  assert.ok(fastStats.documents <= f && fastStats.documents > 2 * s, `gateway: ${fastStats.documents} documents on the fast node, the node: ${f}`);
  assert.ok(fastStats.ms_per_document < slowStats.ms_per_document);
  assert.equal(fastStats.circuit, 'closed');
});
