/**
 * Issue 12 target 4, the head start (scheduler.ts `headStart`, docs/ARCHITECTURE.md "A job's
 * path"): while a submitted job's admission commits, the embedded scheduler sends its first
 * chunks, one per node, from the request's texts. They are recorded after the admission and
 * counted once; a refused admission aborts them and keeps nothing; a job the cache answered
 * at admission has them aborted. Admission is held open by another connection's write lock
 * (BEGIN IMMEDIATE) and the node's calls by its `hang` switch, so nothing depends on timing.
 * One node each (no hedge can add calls). The distributed workers have no head start, so these
 * run only when gateways run on SQLite.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { SimNode } from '../src/sim/index.js';
import { MODEL, assertAllVectors, call, docs, embeddedOnly, lockWrites, type JsonAnswer, nodeView, startSim, startTestGateway, submit, tempDir, tracked, waitFor, waitForStatus } from './helpers.js';


/**
 * Submits `documents` while another connection holds the store's write lock (the admission
 * waits), and waits for the head start's call to park on the node (`hung` calls there): the
 * submit must not have answered first. The caller releases `lock`.
 */
async function submitHeldAtAdmission(t: TestContext, url: string, dataDir: string, node: SimNode, hung: number, documents: string[]): Promise<{ lock: { release(): void }; submitted: { promise: Promise<JsonAnswer>; settled: () => boolean } }> {
  const lock = lockWrites(t, dataDir);
  const submitted = tracked(submit(url, { model: MODEL, documents }));
  await waitFor(() => {
    if (node.stats().hung === hung) return true;
    // Without a head start no call leaves until the admission committed (or, the lock held past
    // the busy timeout, failed).
    if (submitted.settled()) throw new Error('the submit answered before any call left');
    return undefined;
  }, 'the head start call').catch((error: unknown) => {
    // Released before the gateway stops: its writer thread must not be ended inside a busy wait.
    lock.release();
    throw error;
  });
  return { lock, submitted };
}

for (const cache of [true, false]) {
  embeddedOnly(`the first chunk leaves while the admission commits; every document is then recorded once (cache ${cache ? 'on' : 'off'}, in-job duplicates)`, async (t) => {
    const node = await startSim(t, { hang: true });
    const dataDir = tempDir(t);
    const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '8', dataDir, cache });
    const documents = docs(40, `head start ${cache}`);
    // A duplicate inside the head start's chunk (sent from the request, both copies) and one in
    // the next chunk, which is read from the store while the first copy is pending.
    documents[1] = documents[0]!;
    documents[12] = documents[0]!;
    const { lock, submitted } = await submitHeldAtAdmission(t, url, dataDir, node, 1, documents);
    assert.equal(submitted.settled(), false, 'the submit still waits for its admission');
    assert.deepEqual(node.stats().callSizes, [7], 'one chunk per node, each text of it once');
    lock.release();
    const { status, body } = await submitted.promise;
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.status, 'running');
    // Admitted: the rest is cut after the head start's chunk (the node's second slot).
    await waitFor(() => (node.stats().hung === 2 ? true : undefined), 'the next chunk');
    const meanwhile = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
    assert.equal(meanwhile.progress.completed_items, 0, 'nothing is counted before a node answers');
    node.configure({ hang: false });
    const done = await waitForStatus(url, body.job_id, ['completed', 'failed', 'cancelled']);
    assert.equal(done.status, 'completed');
    assert.equal(done.progress.completed_items, 40);
    assert.equal(done.progress.failed_items, 0);
    await assertAllVectors(url, body.job_id, documents);
    // Each text was sent once: the head start's chunk left out the copy inside it (its range was
    // read again afterwards: with the cache off the store hands the copy out, with it on the copy
    // was filled by key), and with the cache on the copy in the second chunk is filled too.
    assert.deepEqual(node.stats().callSizes.slice(0, 2), cache ? [7, 7] : [7, 8]);
    assert.equal(node.stats().documents, cache ? 38 : 40);
  });
}

embeddedOnly('a refused admission aborts the head start: nothing is stored, the node is not charged', async (t) => {
  const node = await startSim(t, { hang: true });
  const dataDir = tempDir(t);
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '8', maxJobs: '1', dataDir });
  const first = await submit(url, { model: MODEL, documents: docs(4, 'the one job') });
  assert.equal(first.status, 200);
  await waitFor(() => (node.stats().hung === 1 ? true : undefined), 'the first job held on the node');
  // The store holds its one job, active: the next submit is refused, after its head start left.
  const { lock, submitted } = await submitHeldAtAdmission(t, url, dataDir, node, 2, docs(4, 'refused'));
  lock.release();
  const refused = await submitted.promise;
  assert.equal(refused.status, 429, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'TOO_MANY_JOBS');
  await waitFor(() => (node.stats().aborted === 1 && node.stats().hung === 1 ? true : undefined), 'the head start call to be aborted');
  const listed = (await call(`${url}/api/batch/jobs`)).body;
  assert.deepEqual(listed.jobs.map((j: { job_id: string }) => j.job_id), [first.body.job_id]);
  const view = await waitFor(async () => {
    const v = await nodeView(url, node.url);
    return v.in_flight === 1 ? v : undefined;
  }, 'the gateway to let go of the aborted call');
  assert.equal(view.errors, 0);
  assert.equal(view.consecutive_failures, 0);
  assert.equal(view.circuit, 'closed');
  node.configure({ hang: false });
  const done = await waitForStatus(url, first.body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(node.stats().documents, 4, 'only the admitted job was answered');
});

embeddedOnly('the head start sends only what the content cache does not hold; a job the cache answers whole gets no call', async (t) => {
  const node = await startSim(t);
  const dataDir = tempDir(t);
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '8', dataDir });
  const cached = docs(12, 'cached');
  const first = await submit(url, { model: MODEL, documents: cached });
  assert.equal((await waitForStatus(url, first.body.job_id, ['completed', 'failed'])).status, 'completed');
  node.configure({ hang: true });
  node.resetStats();

  // Every text cached: nothing is sent, before or after the admission.
  const again = await submit(url, { model: MODEL, documents: cached });
  const whole = await waitForStatus(url, again.body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(whole.status, 'completed');
  assert.equal(whole.progress.completed_items, 12);
  assert.equal(node.stats().embedCalls, 0);
  await assertAllVectors(url, again.body.job_id, cached);

  // One new text among cached ones in the head start's chunk: only it leaves before the admission.
  const mixed = [...cached.slice(0, 8), ...docs(4, 'new')];
  mixed[3] = 'a new text among cached ones';
  const { lock, submitted } = await submitHeldAtAdmission(t, url, dataDir, node, 1, mixed);
  assert.deepEqual(node.stats().callSizes, [1]);
  lock.release();
  const { body } = await submitted.promise;
  node.configure({ hang: false });
  const done = await waitForStatus(url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 12);
  assert.equal(done.progress.failed_items, 0);
  assert.equal(node.stats().documents, 5, 'the new text and the 4 of the second chunk');
  await assertAllVectors(url, body.job_id, mixed);
});

embeddedOnly('cancel aborts a head start call like any other: nothing is recorded', async (t) => {
  const node = await startSim(t, { hang: true });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '8' });
  const { body } = await submit(url, { model: MODEL, documents: docs(16, 'head start cancel') });
  await waitFor(() => (node.stats().hung === 2 ? true : undefined), 'the head start and the next chunk');
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' })).status, 200);
  await waitFor(() => (node.stats().hung === 0 ? true : undefined), 'both calls to be aborted');
  assert.equal(node.stats().aborted, 2);
  node.configure({ hang: false });
  const after = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
  assert.equal(after.status, 'cancelled');
  assert.equal(after.progress.completed_items, 0);
  assert.equal(node.stats().documents, 0);
});
