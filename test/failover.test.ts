/** Failover: a node that dies, fails some calls, lacks a model or comes back never costs a document. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startSimNode } from '../src/sim/index.js';
import { MODEL, assertAllVectors, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

async function assertComplete(url: string, jobId: string, documents: string[]): Promise<void> {
  const done = await waitForStatus(url, jobId, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, documents.length);
  assert.equal(done.progress.failed_items, 0);
  await assertAllVectors(url, jobId, documents);
}

async function backendStats(url: string, nodeUrl: string): Promise<{ healthy: boolean; circuit: string; calls: number }> {
  const stats = (await call(`${url}/api/stats`)).body;
  return stats.backends.find((b: { url: string }) => b.url === nodeUrl);
}

test('a node killed mid-job costs no document: its chunks are retried on the other node', async (t) => {
  const a = await startSim(t, { delayPerCallMs: 5, serial: true });
  const b = await startSim(t, { delayPerCallMs: 5, serial: true });
  const { url } = await startTestGateway(t, { backend: [a.url, b.url], chunkSize: '5' });
  const documents = docs(300, 'killed');
  const { body } = await submit(url, { model: MODEL, documents });
  await waitFor(() => (a.stats().documents >= 20 ? true : undefined), 'node A to make progress');
  await a.close();
  await assertComplete(url, body.job_id, documents);
  assert.ok(a.stats().documents < 300, 'node A died before the end');
  assert.ok(b.stats().documents > 0);
  const dead = await backendStats(url, a.url);
  assert.equal(dead.healthy, false);
});

test('a node answering 500 to a fraction of calls still yields a complete job', async (t) => {
  const flaky = await startSim(t, { failureRate: 0.3, failureSeed: 11 });
  const good = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [flaky.url, good.url], chunkSize: '5' });
  const documents = docs(200, 'flaky');
  const { body } = await submit(url, { model: MODEL, documents });
  await assertComplete(url, body.job_id, documents);
  assert.ok(flaky.stats().failures > 0, 'the node did fail some calls');
  const stats = await backendStats(url, flaky.url);
  // Every failure the gateway read is counted against the node. A hedged duplicate the node
  // failed after the other call already won is aborted unread (never charged), so under load
  // the node may count a few more failures than the gateway saw, never fewer.
  const errors = (stats as unknown as { errors: number }).errors;
  assert.ok(errors > 0 && errors <= flaky.stats().failures, `gateway counted ${errors} errors, the node failed ${flaky.stats().failures} calls`);
});

test('a node that comes back on the same port is probed back in and used again', async (t) => {
  const a = await startSim(t);
  const b = await startSim(t, { delayPerCallMs: 2 });
  const { url } = await startTestGateway(t, { backend: [a.url, b.url], chunkSize: '5' });
  const first = await submit(url, { model: MODEL, documents: docs(40, 'before') });
  await assertComplete(url, first.body.job_id, docs(40, 'before'));
  await a.close();
  await waitFor(async () => ((await backendStats(url, a.url)).healthy ? undefined : true), 'node A to be seen down');
  const during = docs(60, 'during');
  const second = await submit(url, { model: MODEL, documents: during });
  await assertComplete(url, second.body.job_id, during);

  const back = await startSimNode({ port: a.port });
  t.after(() => back.close());
  await waitFor(async () => ((await backendStats(url, a.url)).healthy ? true : undefined), 'node A to be probed back in');
  const after = docs(200, 'after');
  const third = await submit(url, { model: MODEL, documents: after });
  await assertComplete(url, third.body.job_id, after);
  assert.ok(back.stats().embedCalls > 0, 'the node that came back gets calls again');
  assert.equal((await backendStats(url, a.url)).circuit, 'closed');
});

test('a model whose only node is down is unreachable, not unknown: sync 503, a job waits and completes once the node is back', async (t) => {
  const node = await startSim(t);
  // The embedded backend stays up (another model), so "some node is healthy" alone would say 404.
  const { url } = await startTestGateway(t, { backend: [node.url, 'embedded'], chunkSize: '5' });
  await node.close();
  await waitFor(async () => ((await backendStats(url, node.url)).healthy ? undefined : true), 'the node to be seen down');

  const sync = await call(`${url}/api/embed`, { body: { model: MODEL, input: 'x' } });
  assert.equal(sync.status, 503, JSON.stringify(sync.body));
  assert.equal(sync.body.code, 'BACKEND_UNAVAILABLE');
  const openai = await call(`${url}/v1/embeddings`, { body: { model: MODEL, input: 'x' } });
  assert.equal(openai.status, 503, JSON.stringify(openai.body));
  const unknown = await call(`${url}/api/embed`, { body: { model: 'no-such-model', input: 'x' } });
  assert.equal(unknown.status, 404, 'a model no node ever listed is still unknown');

  const documents = docs(20, 'waits');
  const submitted = await submit(url, { model: MODEL, documents });
  assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
  // Embedded: `pending`. Distributed (the suite's Redis pass): the workers' registry lists the
  // node's models until the next heartbeat, so the job may be queued `running`; either way it
  // is admitted, never refused as an unknown model, and waits for the node.
  assert.ok(['pending', 'running'].includes(submitted.body.status), `the job waits for the node: ${submitted.body.status}`);
  const back = await startSimNode({ port: node.port });
  t.after(() => back.close());
  await assertComplete(url, submitted.body.job_id, documents);
  assert.equal(back.stats().documents, documents.length);
});

test('a model missing on one node routes to the node that has it', async (t) => {
  const refusing = await startSim(t, { rejectModels: [MODEL] });
  const lacking = await startSim(t, { models: { 'all-minilm': 384 } });
  const serving = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [refusing.url, lacking.url, serving.url], chunkSize: '5' });
  const documents = docs(100, 'model');
  const { body } = await submit(url, { model: MODEL, documents });
  await assertComplete(url, body.job_id, documents);
  assert.equal(serving.stats().documents, 100);
  assert.equal(lacking.stats().embedCalls, 0, 'a node that does not list the model gets no call');
  assert.equal(refusing.stats().documents, 0);
});
