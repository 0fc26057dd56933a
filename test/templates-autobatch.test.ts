/**
 * Templates and autobatch over real HTTP: template CRUD, runs with overrides, cron schedules
 * (croner) running by themselves and across a restart; autobatch queues kept in the store,
 * flushed per owner and model or template into jobs (several over the batch limit), with a
 * restart while documents are queued. Runs on Redis too through job-control-distributed.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, assertAllVectors, call, docs, startSim, startTestGateway, waitFor, waitForStatus } from './helpers.js';

const KEY_A = 'alice-key-0123456789abcdef';
const KEY_B = 'bob-key-0123456789abcdef-xyz';
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
/** Restarted gateways flush every 0.2 s; documents queued before that boundary all go into its first flush. */
const SHORT_INTERVAL_MS = 200;
const pastNextBoundary = (queuedAt: number) =>
  waitFor(() => (Date.now() >= (Math.floor(queuedAt / SHORT_INTERVAL_MS) + 1) * SHORT_INTERVAL_MS ? true : undefined), 'the 0.2 s boundary after the last queue call');

test('templates: create, list, get, delete per key; duplicate, bad schedule and unknown names are refused', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], apiKey: [KEY_A, KEY_B] });
  const a = bearer(KEY_A);
  const created = await call(`${url}/api/batch/templates`, { body: { name: 'nightly', model: MODEL, priority: 'low', metadata: { team: 'x' }, options: { truncate: false } }, headers: a });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.deepEqual({ ...created.body, created_at: undefined }, {
    name: 'nightly', job_type: 'embed', model: MODEL, options: { truncate: false }, metadata: { team: 'x' }, priority: 'low', callback_url: null, schedule: null, next_run_at: null, created_at: undefined,
  });
  const again = await call(`${url}/api/batch/templates`, { body: { name: 'nightly', model: MODEL }, headers: a });
  assert.equal(again.status, 409);
  assert.equal(again.body.code, 'TEMPLATE_EXISTS');
  assert.deepEqual((await call(`${url}/api/batch/templates`, { headers: a })).body.templates.map((x: { name: string }) => x.name), ['nightly']);
  assert.deepEqual((await call(`${url}/api/batch/templates`, { headers: bearer(KEY_B) })).body.templates, [], "bob does not see alice's");
  assert.equal((await call(`${url}/api/batch/templates/nightly`, { headers: bearer(KEY_B) })).status, 404);
  assert.equal((await call(`${url}/api/batch/templates/nightly`, { headers: a })).body.priority, 'low');
  const badCron = await call(`${url}/api/batch/templates`, { body: { name: 'c', model: MODEL, schedule: 'every day', documents: ['x'] }, headers: a });
  assert.equal(badCron.body.code, 'INVALID_SCHEDULE');
  const noInput = await call(`${url}/api/batch/templates`, { body: { name: 'c', model: MODEL, schedule: '0 2 * * *' }, headers: a });
  assert.equal(noInput.body.code, 'INVALID_TEMPLATE');
  const badType = await call(`${url}/api/batch/templates`, { body: { name: 'c', model: MODEL, job_type: 'transcribe' }, headers: a });
  assert.equal(badType.body.code, 'INVALID_TEMPLATE');
  const deleted = await call(`${url}/api/batch/templates/nightly`, { method: 'DELETE', headers: a });
  assert.deepEqual(deleted.body, { name: 'nightly', deleted: true });
  assert.equal((await call(`${url}/api/batch/templates/nightly`, { method: 'DELETE', headers: a })).body.code, 'TEMPLATE_NOT_FOUND');
  assert.equal((await call(`${url}/api/batch/templates/nightly/run`, { body: { documents: ['x'] }, headers: a })).body.code, 'TEMPLATE_NOT_FOUND');
});

test('a template run is a job with the template set, its settings under the overrides', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  await call(`${url}/api/batch/templates`, { body: { name: 'tpl', model: MODEL, priority: 'low', metadata: { team: 'x', stage: 'a' } } });
  const documents = docs(4, 'run');
  const run = await call(`${url}/api/batch/templates/tpl/run`, { body: { documents, overrides: { priority: 'high', metadata: { stage: 'b' } } }, headers: { 'idempotency-key': 'run-1' } });
  assert.equal(run.status, 200, JSON.stringify(run.body));
  assert.equal(run.body.template, 'tpl');
  const replay = await call(`${url}/api/batch/templates/tpl/run`, { body: { documents, overrides: { priority: 'high', metadata: { stage: 'b' } } }, headers: { 'idempotency-key': 'run-1' } });
  assert.equal(replay.body.job_id, run.body.job_id, 'Idempotency-Key on a run too');
  const done = await waitForStatus(url, run.body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.template, 'tpl');
  assert.equal(done.priority, 'high');
  assert.deepEqual(done.metadata, { team: 'x', stage: 'b', model: MODEL });
  await assertAllVectors(url, run.body.job_id, documents);
  const listed = (await call(`${url}/api/batch/jobs`)).body.jobs;
  assert.equal(listed[0].template, 'tpl');
  const noDocs = await call(`${url}/api/batch/templates/tpl/run`, { body: {} });
  assert.equal(noDocs.status, 400);
  assert.equal(noDocs.body.code, 'NO_DOCUMENTS');
});

test('a scheduled template runs by itself on its cron schedule with its fixed input, and goes on after a restart', async (t) => {
  const node = await startSim(t);
  const first = await startTestGateway(t, { backend: [node.url] });
  const created = await call(`${first.url}/api/batch/templates`, { body: { name: 'every-second', model: MODEL, schedule: '* * * * * *', documents: ['tick'] } });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.ok(created.body.next_run_at);
  const runs = async (base: string): Promise<{ template: string; status: string }[]> =>
    (await call(`${base}/api/batch/jobs?limit=1000`)).body.jobs.filter((j: { template?: string }) => j.template === 'every-second');
  await waitFor(async () => ((await runs(first.url)).length >= 2 ? true : undefined), 'two scheduled runs');
  await first.stop();
  const before = (await runs(first.url).catch(() => undefined))?.length;
  assert.equal(before, undefined, 'the first gateway is stopped');
  const second = await startTestGateway(t, { backend: [node.url], dataDir: first.dataDir });
  const countAtStart = (await runs(second.url)).length;
  await waitFor(async () => ((await runs(second.url)).length >= countAtStart + 2 ? true : undefined), 'runs after the restart');
  await waitFor(async () => ((await runs(second.url)).every((j) => j.status === 'completed') ? true : undefined), 'the runs to complete');
  await call(`${second.url}/api/batch/templates/every-second`, { method: 'DELETE' });
});

test('autobatch: queued documents wait for the flush the answer names, survive a restart, and become one job per model and template', async (t) => {
  const node = await startSim(t);
  const first = await startTestGateway(t, { backend: [node.url], autobatchInterval: '3600' });
  await call(`${first.url}/api/batch/templates`, { body: { name: 'ab-tpl', model: MODEL, priority: 'high' } });
  const d1 = docs(3, 'one');
  const d2 = docs(2, 'two');
  const q1 = await call(`${first.url}/api/autobatch/documents`, { body: { model: MODEL, documents: d1, metadata: { from: 'q1' } } });
  assert.equal(q1.status, 200, JSON.stringify(q1.body));
  assert.equal(q1.body.queued, 3);
  assert.equal(Date.parse(q1.body.flush_at) % 3_600_000, 0, 'the flush at the next multiple of the interval');
  assert.ok(Date.parse(q1.body.flush_at) > Date.now());
  const q2 = await call(`${first.url}/api/autobatch/documents`, { body: { model: MODEL, documents: d2 }, headers: { 'idempotency-key': 'q2' } });
  assert.equal(q2.body.queued_for_target, 5);
  const q2again = await call(`${first.url}/api/autobatch/documents`, { body: { model: MODEL, documents: d2 }, headers: { 'idempotency-key': 'q2' } });
  assert.deepEqual(q2again.body, q2.body, 'a retried queue call is answered, not queued again');
  await call(`${first.url}/api/autobatch/documents`, { body: { template: 'ab-tpl', documents: ['t0', 't1'] } });
  const status = (await call(`${first.url}/api/autobatch`)).body;
  assert.equal(status.interval_seconds, 3600);
  assert.equal(status.next_flush_at, q1.body.flush_at);
  assert.deepEqual(status.queued.map((q: { model?: string; template?: string; documents: number }) => [q.model ?? q.template, q.documents]).sort(), [[MODEL, 5], ['ab-tpl', 2]].sort());
  assert.deepEqual((await call(`${first.url}/api/autobatch/history`)).body.flushes, []);
  for (const bad of [{ documents: ['x'] }, { model: MODEL, template: 'ab-tpl', documents: ['x'] }]) {
    assert.equal((await call(`${first.url}/api/autobatch/documents`, { body: bad })).body.code, 'INVALID_BODY');
  }
  assert.equal((await call(`${first.url}/api/autobatch/documents`, { body: { template: 'nope', documents: ['x'] } })).body.code, 'TEMPLATE_NOT_FOUND');
  await first.stop();
  await pastNextBoundary(Date.now());

  // Restarted with a short interval: the queued documents are flushed at its next boundary.
  const second = await startTestGateway(t, { backend: [node.url], dataDir: first.dataDir, autobatchInterval: String(SHORT_INTERVAL_MS / 1000) });
  const history = await waitFor(async () => {
    const h = (await call(`${second.url}/api/autobatch/history`)).body.flushes;
    return h.length === 2 ? h : undefined;
  }, 'two flushes');
  const byTarget = Object.fromEntries(history.map((f: { model?: string; template?: string; job_ids: string[]; documents: number }) => [f.model ?? f.template, f]));
  assert.equal(byTarget[MODEL].documents, 5);
  assert.equal(byTarget[MODEL].job_ids.length, 1);
  assert.equal(byTarget['ab-tpl'].job_ids.length, 1);
  const job = await waitForStatus(second.url, byTarget[MODEL].job_ids[0], ['completed', 'failed']);
  assert.equal(job.status, 'completed');
  assert.deepEqual(job.metadata.autobatch_metadata, [{ from: 'q1' }]);
  await assertAllVectors(second.url, byTarget[MODEL].job_ids[0], [...d1, ...d2]);
  const tplJob = await waitForStatus(second.url, byTarget['ab-tpl'].job_ids[0], ['completed', 'failed']);
  assert.equal(tplJob.template, 'ab-tpl');
  assert.equal(tplJob.priority, 'high');
  assert.deepEqual((await call(`${second.url}/api/autobatch`)).body.queued, [], 'nothing left queued');
});

test('autobatch: over --max-batch-documents a flush makes several jobs; owners are flushed apart', async (t) => {
  const node = await startSim(t);
  const flags = { backend: [node.url], maxBatchDocuments: '3', apiKey: [KEY_A, KEY_B] };
  const first = await startTestGateway(t, { ...flags, autobatchInterval: '3600' });
  for (const n of [2, 2, 2]) await call(`${first.url}/api/autobatch/documents`, { body: { model: MODEL, documents: docs(n, `a${n}`) }, headers: bearer(KEY_A) });
  await call(`${first.url}/api/autobatch/documents`, { body: { model: MODEL, documents: ['b'] }, headers: bearer(KEY_B) });
  assert.deepEqual((await call(`${first.url}/api/autobatch`, { headers: bearer(KEY_B) })).body.queued.map((q: { documents: number }) => q.documents), [1], 'bob sees his own queue only');
  const answer = await call(`${first.url}/api/autobatch/documents`, { body: { model: MODEL, documents: ['last'] }, headers: bearer(KEY_A) });
  assert.equal(answer.body.jobs_expected, 3, '7 documents at 3 per job');
  await first.stop();
  await pastNextBoundary(Date.now());
  const { url } = await startTestGateway(t, { ...flags, dataDir: first.dataDir, autobatchInterval: String(SHORT_INTERVAL_MS / 1000) });
  const alice = await waitFor(async () => {
    const h = (await call(`${url}/api/autobatch/history`, { headers: bearer(KEY_A) })).body.flushes;
    return h.length > 0 ? h : undefined;
  }, "alice's flush");
  assert.equal(alice.length, 1, JSON.stringify(alice));
  assert.equal(alice[0].documents, 7, JSON.stringify(alice));
  assert.equal(alice[0].job_ids.length, 3);
  const sizes = [];
  for (const id of alice[0].job_ids) sizes.push((await call(`${url}/api/batch/jobs/${id}`, { headers: bearer(KEY_A) })).body.progress.total_items);
  assert.deepEqual(sizes, [3, 3, 1]);
  const bob = await waitFor(async () => {
    const h = (await call(`${url}/api/autobatch/history`, { headers: bearer(KEY_B) })).body.flushes;
    return h.length > 0 ? h : undefined;
  }, "bob's flush");
  assert.equal(bob[0].documents, 1);
  assert.notDeepEqual(bob[0].job_ids, alice[0].job_ids);
});

test('OpenAPI describes the job-control routes', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const spec = (await call(`${url}/openapi.json`)).body;
  assert.ok(spec.paths['/api/batch/jobs/{job_id}'].patch, 'PATCH priority');
  for (const path of ['/api/batch/templates', '/api/batch/templates/{name}/run', '/api/autobatch/documents']) assert.ok(spec.paths[path]?.post, path);
  for (const path of ['/api/batch/templates', '/api/batch/templates/{name}', '/api/autobatch', '/api/autobatch/history']) assert.ok(spec.paths[path]?.get, path);
  const submit = spec.paths['/api/batch/embed'].post.requestBody.content['application/json'].schema.properties;
  for (const field of ['priority', 'run_at', 'depends_on', 'documents_from', 'callback_url']) assert.ok(submit[field], field);
});
