/** A small job submitted behind a big one shares the slots fairly and finishes within a few chunks' time. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, sentUntilLastOf, startSim, startTestGateway, submit, waitForStatus } from './helpers.js';

test('a 20-document job behind a 5,000-document job finishes while the big one is still early', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 10, serial: true });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10' });
  const big = await submit(url, { model: MODEL, documents: docs(5000, 'big') });
  const small = await submit(url, { model: MODEL, documents: docs(20, 'small') });
  assert.equal(small.body.status, 'running');
  await waitForStatus(url, small.body.job_id, ['completed']);
  const bigStatus = (await call(`${url}/api/batch/jobs/${big.body.job_id}`)).body;
  assert.equal(bigStatus.status, 'running');
  // Round-robin: the small job's 2 chunks interleave with the big one's, so it ends after a
  // handful of chunks (counted on the node's record of its calls, in order, not on progress
  // read after the small job's end).
  const { callSizes, callFirstInputs } = node.stats();
  const sent = sentUntilLastOf(callFirstInputs, 0, 'small', callSizes);
  assert.equal(sent['small'], 20);
  assert.ok((sent['big'] ?? 0) <= 200, `the big job was sent ${sent['big']} documents before the small one's last`);
  const cancel = await call(`${url}/api/batch/jobs/${big.body.job_id}`, { method: 'DELETE' });
  assert.equal(cancel.status, 200);
});

test('--workers bounds the chunks in flight; the node never sees more', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 5 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '5', workers: '1' });
  const { body } = await submit(url, { model: MODEL, documents: docs(100) });
  await waitForStatus(url, body.job_id, ['completed']);
  assert.equal(node.stats().maxInFlight, 1);
  assert.equal(node.stats().embedCalls, 20);
});
