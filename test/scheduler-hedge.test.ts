/**
 * Issue 12 target 4, the tail: once nothing is left to cut, an idle node takes a duplicate of a
 * straggling chunk (a hedge, scheduler.ts / chunkSizing.ts). The first answer is recorded, the
 * other call is aborted and charged to no node, and every document is counted once. The
 * straggler here is a node that hangs (it never answers until told to), so the hedge is
 * certain to be needed and nothing depends on timing. The embedded scheduler hedges; the
 * distributed workers do not, so these run only when gateways run on SQLite.
 */
import assert from 'node:assert/strict';
import { MODEL, assertAllVectors, call, docs, embeddedOnly, nodeView, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

embeddedOnly('a chunk held by a stuck node is duplicated on the idle node: the job completes, every document counted once', async (t) => {
  const stuck = await startSim(t, { serial: true, hang: true });
  const fast = await startSim(t);
  // Two nodes, two calls in flight each (workers auto = 4): the first dispatch gives the stuck node two chunks.
  const { url } = await startTestGateway(t, { backend: [stuck.url, fast.url], chunkSize: '8' });
  const documents = docs(40, 'hedge');
  const { body } = await submit(url, { model: MODEL, documents });
  const done = await waitForStatus(url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 40);
  assert.equal(done.progress.failed_items, 0);
  await assertAllVectors(url, body.job_id, documents);

  // The stuck node took two calls and answered none; the fast node answered every document
  // once: its own chunks and a duplicate of each stuck chunk.
  assert.equal(stuck.stats().embedCalls, 2);
  assert.equal(stuck.stats().documents, 0);
  assert.equal(fast.stats().documents, 40);
  // The losing calls were aborted (the one on the runner and the one queued behind it) ...
  await waitFor(() => (stuck.stats().aborted === 2 && stuck.stats().hung === 0 && stuck.stats().queued === 0 ? true : undefined), 'the stuck calls to be aborted');
  // ... and no node was charged for it.
  const view = await waitFor(async () => {
    const v = await nodeView(url, stuck.url);
    return v.in_flight === 0 ? v : undefined;
  }, 'the gateway to let go of the stuck calls');
  assert.equal(view.errors, 0);
  assert.equal(view.consecutive_failures, 0);
  assert.equal(view.circuit, 'closed');
});

embeddedOnly('a duplicate that fails decides nothing: no bisection, no failed document, the original answers', async (t) => {
  const POISON = 'POISONED';
  const slow = await startSim(t, { serial: true });
  const fast = await startSim(t, { delayPerCallMs: 400 });
  const { url } = await startTestGateway(t, { backend: [slow.url, fast.url], chunkSize: '4' });
  // A warm-up measures the first node as the faster (the second takes 400 ms a call, so even a CPU-starved
  // machine measures it slower), so routing sends it the next job's only chunk.
  const warm = await submit(url, { model: MODEL, documents: docs(64, 'warm') });
  assert.equal((await waitForStatus(url, warm.body.job_id, ['completed', 'failed'])).status, 'completed');
  slow.configure({ hang: true });
  fast.configure({ delayPerCallMs: 0, poison: POISON, poisonError: 'reject400' });
  slow.resetStats();
  fast.resetStats();

  // One chunk (4 documents: the tail never cuts below 4), holding a document the fast node refuses.
  const documents = docs(4, 'duplicate fails');
  documents[1] = `${POISON} 1: the fast node refuses this one`;
  const { body } = await submit(url, { model: MODEL, documents });
  // The chunk sits on the stuck node; its duplicate on the fast node is refused (400) ...
  await waitFor(() => (slow.stats().hung === 1 && fast.stats().failures === 1 ? true : undefined), 'the duplicate to be refused');
  // ... which neither fails the document nor bisects the chunk: the original still decides.
  const meanwhile = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(meanwhile.status, 'running');
  assert.equal(meanwhile.progress.failed_items, 0);
  slow.configure({ hang: false });
  const done = await waitForStatus(url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 4);
  assert.equal(done.progress.failed_items, 0);
  await assertAllVectors(url, body.job_id, documents);
  // The fast node saw one duplicate of the whole chunk and refused it: nothing was bisected or retried there.
  assert.deepEqual(fast.stats().callSizes, [4]);
  assert.equal(fast.stats().failures, 1);
  assert.equal(fast.stats().documents, 0);
  assert.deepEqual(slow.stats().callSizes, [4]);
  assert.equal(slow.stats().documents, 4);
  const view = await nodeView(url, fast.url);
  assert.equal(view.circuit, 'closed');
  assert.equal(view.consecutive_failures, 0, 'the duplicate failure is not held against the node');
});

embeddedOnly('cancel aborts a hedged pair at once: both calls end, nothing is recorded', async (t) => {
  const first = await startSim(t, { serial: true });
  const second = await startSim(t, { delayPerCallMs: 400 });
  const { url } = await startTestGateway(t, { backend: [first.url, second.url], chunkSize: '4' });
  // As above: the first node is measured the faster, so it gets the job's only chunk.
  const warm = await submit(url, { model: MODEL, documents: docs(64, 'warm') });
  assert.equal((await waitForStatus(url, warm.body.job_id, ['completed', 'failed'])).status, 'completed');
  first.configure({ hang: true });
  second.configure({ hang: true, delayPerCallMs: 0 });
  first.resetStats();
  second.resetStats();
  const { body } = await submit(url, { model: MODEL, documents: docs(4, 'hedge cancel') });
  await waitFor(() => (first.stats().hung === 1 && second.stats().hung === 1 ? true : undefined), 'the chunk and its duplicate to be held');
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' })).status, 200);
  const held = (): number => first.stats().hung + first.stats().queued + second.stats().hung + second.stats().queued;
  await waitFor(() => (held() === 0 ? true : undefined), 'every call to be aborted');
  assert.equal(first.stats().aborted + second.stats().aborted, first.stats().embedCalls + second.stats().embedCalls);
  const after = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(after.status, 'cancelled');
  assert.equal(after.progress.completed_items, 0);
  assert.equal(first.stats().documents + second.stats().documents, 0);
});
