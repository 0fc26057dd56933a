/**
 * Issue 10 item 5: no job is ever stuck without a word. A job whose every document is decided
 * ends; a misspelt model fails MODEL_NOT_FOUND as soon as a node is reachable; while a job
 * cannot progress its status says why (`status_detail`), and after --pending-timeout its
 * remaining documents fail BACKEND_UNAVAILABLE while the finished ones are kept.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startSimNode } from '../src/sim/index.js';
import { MODEL, call, docs, nodeView, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';
import { freePort } from './ports.js';

test('a job given up on while its chunks are in flight ends (40/40 failed is failed, not running forever)', async (t) => {
  const node = await startSim(t, { hang: true });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10', pendingTimeout: '0.5' });
  const { body } = await submit(url, { model: MODEL, documents: docs(40) });
  // Every slot the gateway has on the node holds a parked call, so no call can start after the
  // node stops listing the model (one would be answered 404 and fail its documents MODEL_NOT_FOUND
  // before the give-up: seen with two test files at once, the second call not yet sent).
  await waitFor(async () => {
    const view = await nodeView(url, node.url);
    return view.in_flight === view.max_in_flight && node.stats().hung === view.in_flight ? true : undefined;
  }, 'every slot on the node to hold a parked call');
  // The node stops listing the model: no backend serves the job while its calls are in flight.
  node.configure({ models: { 'other-model': null } });
  const given = await waitFor(async () => {
    const s = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
    return s.progress.failed_items === 40 ? s : undefined;
  }, 'the give-up to fail every document');
  assert.equal(given.progress.failed_items, 40);
  // The parked calls now finish: the job must end, whatever they bring.
  node.configure({ hang: false });
  const status = await waitForStatus(url, body.job_id, ['failed', 'completed']);
  assert.equal(status.status, 'failed');
  assert.deepEqual(status.error_counts, { BACKEND_UNAVAILABLE: 40 });
});

test('a misspelt model submitted while no node is up fails MODEL_NOT_FOUND as soon as a node is, not after the pending timeout', async (t) => {
  const port = await freePort();
  const { url } = await startTestGateway(t, { backend: [`http://127.0.0.1:${port}`] });
  const { body } = await submit(url, { model: 'nomic-embd-text', documents: docs(3) });
  assert.equal(body.status, 'pending');
  const waiting = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${body.job_id}`)).body.status_detail?.reason === 'no_backend' ? true : undefined), 'status_detail no_backend');
  assert.equal(waiting.status, 'pending');
  const node = await startSimNode({ port });
  t.after(() => node.close());
  // The default pending timeout is 600 s: the bound here is the helper's 20 s.
  const status = await waitForStatus(url, body.job_id, ['failed']);
  assert.equal(status.errors[0].code, 'MODEL_NOT_FOUND');
  assert.match(status.errors[0].error, /nomic-embd-text/);
  assert.equal(status.progress.failed_items, 3);
});

test('a running job whose node goes away says why it waits, then fails its remaining documents and keeps the finished ones', async (t) => {
  const node = await startSim(t, { serial: true, delayPerCallMs: 30 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '2', workers: '1', pendingTimeout: '2' });
  const { body } = await submit(url, { model: MODEL, documents: docs(200) });
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 4 ? true : undefined), 'some documents done');
  await node.close();
  const waiting = await waitFor(async () => {
    const s = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
    return s.status_detail || s.status !== 'running' ? s : undefined;
  }, 'a status_detail');
  assert.equal(waiting.status, 'running');
  assert.equal(waiting.status_detail.reason, 'no_backend');
  assert.match(waiting.status_detail.message, new RegExp(MODEL));
  assert.ok(Date.parse(waiting.status_detail.since) > 0);
  const status = await waitForStatus(url, body.job_id, ['completed', 'failed']);
  assert.equal(status.status, 'completed', 'finished documents are kept: the job is partly failed');
  assert.ok(status.progress.completed_items >= 4);
  assert.equal(status.progress.completed_items + status.progress.failed_items, 200);
  assert.deepEqual(Object.keys(status.error_counts), ['BACKEND_UNAVAILABLE']);
  assert.equal(status.status_detail, undefined);
});

test('a user\'s metadata.model is kept; the job\'s model is added only when the user did not set it', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const mine = await submit(url, { model: MODEL, documents: docs(1), metadata: { model: 'my-own-label', source: 'faq' } });
  const plain = await submit(url, { model: MODEL, documents: docs(1), metadata: { source: 'faq' } });
  assert.deepEqual((await call(`${url}/api/batch/jobs/${mine.body.job_id}`)).body.metadata, { model: 'my-own-label', source: 'faq' });
  assert.deepEqual((await call(`${url}/api/batch/jobs/${plain.body.job_id}`)).body.metadata, { model: MODEL, source: 'faq' });
});
