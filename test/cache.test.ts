/** The content cache: identical (model, text, options) is embedded once, inside a job and across jobs, and survives a restart. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, tempDir, waitForStatus } from './helpers.js';

test('a resubmitted job is answered from the cache with zero backend calls and the same vectors', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '16' });
  const documents = docs(200, 'cached');
  const first = await submit(url, { model: MODEL, documents });
  await waitForStatus(url, first.body.job_id, ['completed']);
  const callsAfterFirst = node.stats().embedCalls;
  assert.equal(node.stats().documents, 200);

  const second = await submit(url, { model: MODEL, documents });
  const done = await waitForStatus(url, second.body.job_id, ['completed']);
  assert.equal(done.progress.completed_items, 200);
  assert.equal(node.stats().embedCalls, callsAfterFirst, 'no backend call for cached documents');
  const a = (await call(`${url}/api/batch/results/${first.body.job_id}`)).body.results;
  const b = (await call(`${url}/api/batch/results/${second.body.job_id}`)).body.results;
  assert.deepEqual(b, a);
  const cache = (await call(`${url}/api/stats`)).body.cache;
  assert.equal(cache.enabled, true);
  assert.equal(cache.hits, 200);
  assert.equal(cache.entries, 200);
  assert.ok(cache.bytes >= 200 * 768 * 4);
});

test('identical texts inside one job are embedded once; other options or models are different entries', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '8' });
  const documents = [...Array(30).fill('the same sentence'), 'another sentence', ...Array(9).fill('the same sentence')];
  const job = await submit(url, { model: MODEL, documents });
  const done = await waitForStatus(url, job.body.job_id, ['completed']);
  assert.equal(done.progress.completed_items, 40);
  assert.equal(node.stats().documents, 2, `the node embedded ${node.stats().documents} documents for 2 distinct texts`);
  const results = (await call(`${url}/api/batch/results/${job.body.job_id}`)).body.results;
  assert.deepEqual(results[39].embedding, results[0].embedding);

  const before = node.stats().documents;
  const other = await submit(url, { model: MODEL, documents: ['another sentence'], options: { truncate: false } });
  await waitForStatus(url, other.body.job_id, ['completed']);
  assert.equal(node.stats().documents, before + 1, 'different options are a different cache entry');
});

test('the cache survives a restart; --no-cache turns it off', async (t) => {
  const node = await startSim(t);
  const dataDir = tempDir(t);
  const first = await startTestGateway(t, { backend: [node.url], dataDir });
  const job = await submit(first.url, { model: MODEL, documents: docs(20) });
  await waitForStatus(first.url, job.body.job_id, ['completed']);
  await first.stop();
  const calls = node.stats().embedCalls;

  const second = await startTestGateway(t, { backend: [node.url], dataDir });
  const again = await submit(second.url, { model: MODEL, documents: docs(20) });
  await waitForStatus(second.url, again.body.job_id, ['completed']);
  assert.equal(node.stats().embedCalls, calls, 'served from the cache written before the restart');
  await second.stop();

  const off = await startTestGateway(t, { backend: [node.url], dataDir, cache: false });
  const third = await submit(off.url, { model: MODEL, documents: docs(20) });
  await waitForStatus(off.url, third.body.job_id, ['completed']);
  assert.ok(node.stats().embedCalls > calls, 'with the cache off the node is called');
  assert.equal((await call(`${off.url}/api/stats`)).body.cache.enabled, false);
});

test('a small --cache-max-mb evicts the least recently used vectors', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], cacheMaxMb: '0.1' });
  const job = await submit(url, { model: MODEL, documents: docs(100) });
  await waitForStatus(url, job.body.job_id, ['completed']);
  const cache = (await call(`${url}/api/stats`)).body.cache;
  assert.ok(cache.bytes <= 0.1 * 1024 * 1024, `cache holds ${cache.bytes} bytes`);
  assert.ok(cache.entries > 0 && cache.entries < 100, JSON.stringify(cache));
});
