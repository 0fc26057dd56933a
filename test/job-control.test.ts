/**
 * Job control over real HTTP (issue 15): Idempotency-Key, priorities (shown, changed, and
 * their fairness by order of completion), scheduled jobs (run_at) and dependencies
 * (depends_on), each with a restart in the middle. Runs on the embedded store here and on
 * Redis through test/job-control-distributed.test.ts.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { ITEM_TEXT_FIELDS } from '../src/jobs/itemFields.js';
import { simVector } from '../src/sim/index.js';
import { MODEL, call, docs, gatewaysOnRedis, sentUntilLastOf, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

const KEY_A = 'alice-key-0123456789abcdef';
const KEY_B = 'bob-key-0123456789abcdef-xyz';
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const inSeconds = (s: number): string => new Date(Date.now() + s * 1000).toISOString();
const embed = (url: string, body: unknown, headers: Record<string, string> = {}) => call(`${url}/api/batch/embed`, { body, headers });

test('Idempotency-Key: the same key and body answer the first answer (same job_id), even after a restart; another body is 409', async (t) => {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url] });
  const body = { model: MODEL, documents: docs(3) };
  const first = await embed(gw.url, body, { 'idempotency-key': 'order-17' });
  assert.equal(first.status, 200);
  const again = await embed(gw.url, { documents: body.documents, model: MODEL }, { 'idempotency-key': 'order-17' });
  assert.equal(again.status, 200);
  assert.equal(again.body.job_id, first.body.job_id);
  assert.deepEqual(again.body, first.body);
  assert.equal(again.headers.get('idempotent-replayed'), 'true');
  const other = await embed(gw.url, { model: MODEL, documents: docs(4) }, { 'idempotency-key': 'order-17' });
  assert.equal(other.status, 409);
  assert.equal(other.body.code, 'IDEMPOTENCY_CONFLICT');
  assert.match(other.body.detail, /order-17/);
  const listed = await call(`${gw.url}/api/batch/jobs`);
  assert.equal(listed.body.total, 1, 'one job made, however many retries');
  await waitForStatus(gw.url, first.body.job_id, ['completed']);

  await gw.stop();
  const restarted = await startTestGateway(t, { backend: [node.url], dataDir: gw.dataDir });
  const afterRestart = await embed(restarted.url, body, { 'idempotency-key': 'order-17' });
  assert.equal(afterRestart.body.job_id, first.body.job_id);
  const fresh = await embed(restarted.url, body, { 'idempotency-key': 'order-18' });
  assert.notEqual(fresh.body.job_id, first.body.job_id);
  const bad = await embed(restarted.url, body, { 'idempotency-key': 'has space' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'INVALID_IDEMPOTENCY_KEY');
});

// SQLite only: on Redis (job-control-distributed.test.ts) reservations are kept, other gateways may hold them.
if (!gatewaysOnRedis()) test('Idempotency-Key: a reservation left by a gateway killed mid-call is released when the embedded gateway starts again', async (t) => {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url] });
  await gw.stop();
  // What a kill -9 between reserving the key and keeping the answer leaves: a reservation
  // (status_code 0) with its 120 s lease. Once, the retried call waited 30 s, then got 409.
  const db = new Database(path.join(gw.dataDir, 'sollol.db'));
  db.prepare(`INSERT INTO idempotency_keys (owner, key, fingerprint, status_code, body, expires_at) VALUES ('anonymous', 'order-99', 'x', 0, '', ?)`).run(Date.now() + 120_000);
  db.close();
  const restarted = await startTestGateway(t, { backend: [node.url], dataDir: gw.dataDir });
  const body = { model: MODEL, documents: docs(2) };
  const retried = await embed(restarted.url, body, { 'idempotency-key': 'order-99' });
  assert.equal(retried.status, 200, JSON.stringify(retried.body));
  const replayed = await embed(restarted.url, body, { 'idempotency-key': 'order-99' });
  assert.equal(replayed.body.job_id, retried.body.job_id, 'the key works as any other from then on');
});

test('Idempotency-Key: concurrent calls with one key make one job; keys are per API key; a refused call keeps nothing', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], apiKey: [KEY_A, KEY_B] });
  const body = { model: MODEL, documents: docs(2) };
  const answers = await Promise.all(Array.from({ length: 5 }, () => embed(url, body, { ...bearer(KEY_A), 'idempotency-key': 'k1' })));
  assert.deepEqual(new Set(answers.map((a) => a.body.job_id)).size, 1, 'one job id for all five');
  const bob = await embed(url, body, { ...bearer(KEY_B), 'idempotency-key': 'k1' });
  assert.equal(bob.status, 200);
  assert.notEqual(bob.body.job_id, answers[0]!.body.job_id, "bob's k1 is not alice's");
  const refused = await embed(url, { model: 'no-such-model', documents: ['x'] }, { ...bearer(KEY_A), 'idempotency-key': 'k2' });
  assert.equal(refused.status, 400);
  const retried = await embed(url, body, { ...bearer(KEY_A), 'idempotency-key': 'k2' });
  assert.equal(retried.status, 200, 'the refused call did not take the key');
  // Retry of a job creates a job too: the same key replays the retry's answer.
  await waitFor(async () => {
    const status = await call(`${url}/api/batch/jobs/${retried.body.job_id}`, { headers: bearer(KEY_A) });
    return status.body.status === 'completed' ? true : undefined;
  }, 'the job to complete');
  const r1 = await call(`${url}/api/batch/jobs/${retried.body.job_id}/retry`, { method: 'POST', headers: { ...bearer(KEY_A), 'idempotency-key': 'k3' } });
  const r2 = await call(`${url}/api/batch/jobs/${retried.body.job_id}/retry`, { method: 'POST', headers: { ...bearer(KEY_A), 'idempotency-key': 'k3' } });
  assert.equal(r1.status, 200);
  assert.equal(r2.body.job_id, r1.body.job_id);
});

test('priority: shown in status and list, changed by PATCH while active, refused once finished or invalid', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const held = await embed(url, { model: MODEL, documents: docs(2), priority: 'high', run_at: inSeconds(3600) });
  assert.equal(held.status, 200);
  assert.equal(held.body.priority, 'high');
  assert.equal((await call(`${url}/api/batch/jobs/${held.body.job_id}`)).body.priority, 'high');
  const patched = await call(`${url}/api/batch/jobs/${held.body.job_id}`, { method: 'PATCH', body: { priority: 'low' } });
  assert.equal(patched.status, 200);
  assert.equal(patched.body.priority, 'low');
  const plain = await submit(url, { model: MODEL, documents: docs(1) });
  await waitForStatus(url, plain.body.job_id, ['completed']);
  const list = (await call(`${url}/api/batch/jobs`)).body.jobs as { job_id: string; priority: string }[];
  assert.deepEqual(Object.fromEntries(list.map((j) => [j.job_id, j.priority])), { [held.body.job_id]: 'low', [plain.body.job_id]: 'normal' });
  const late = await call(`${url}/api/batch/jobs/${plain.body.job_id}`, { method: 'PATCH', body: { priority: 'high' } });
  assert.equal(late.status, 409);
  assert.equal(late.body.code, 'JOB_NOT_CHANGEABLE');
  const invalid = await embed(url, { model: MODEL, documents: docs(1), priority: 'urgent' });
  assert.equal(invalid.status, 400);
  assert.equal(invalid.body.code, 'INVALID_PRIORITY');
  const badPatch = await call(`${url}/api/batch/jobs/${held.body.job_id}`, { method: 'PATCH', body: { priority: 'urgent' } });
  assert.equal(badPatch.status, 400);
});

test('priority fairness by order of completion: high before normal before low; while they compete high runs 4x the chunks of normal, normal 4x those of low', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 5, serial: true });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10', workers: '1' });
  // All three are released by one run_at, in the order they were made: high first, so no job
  // gets a head start on a higher one (in distributed mode each release enqueues its chunks, one
  // job after the other), and the shares below are counted from zero whatever the machine's speed.
  const at = inSeconds(1.5);
  const high = await embed(url, { model: MODEL, documents: docs(400, 'high'), priority: 'high', run_at: at });
  const normal = await embed(url, { model: MODEL, documents: docs(400, 'normal'), run_at: at });
  const low = await embed(url, { model: MODEL, documents: docs(3000, 'low'), priority: 'low', run_at: at });
  for (const job of [low, normal, high]) assert.equal(job.body.status, 'scheduled', 'held until the common start');
  await waitForStatus(url, normal.body.job_id, ['completed']);
  assert.equal((await call(`${url}/api/batch/jobs/${low.body.job_id}`)).body.status, 'running', 'low still running when normal completed');
  // Counted on the node's own record of the calls it was sent, in order, so how late this test
  // sees a job finish does not matter.
  const { callSizes, callFirstInputs } = node.stats();
  // High's 400 documents ran beside at most a quarter as many of normal's (a few chunks of slack for chunks in flight).
  const untilHighEnd = sentUntilLastOf(callFirstInputs, 0, 'high', callSizes);
  assert.equal(untilHighEnd['high'], 400);
  const normalShare = untilHighEnd['normal'] ?? 0;
  assert.ok(normalShare <= 400 / 4 + 30, `normal was sent ${normalShare} documents while high was sent 400`);
  const untilNormalEnd = sentUntilLastOf(callFirstInputs, 0, 'normal', callSizes);
  assert.equal(untilNormalEnd['normal'], 400);
  const lowShare = untilNormalEnd['low'] ?? 0;
  assert.ok(lowShare > 0, 'low was not starved');
  // Normal's 400 and high's 400 documents ran beside at most a quarter of normal's (and a sixteenth of high's) of low's.
  assert.ok(lowShare <= 400 / 4 + 400 / 16 + 30, `low was sent ${lowShare} documents while normal was sent 400`);
  await call(`${url}/api/batch/jobs/${low.body.job_id}`, { method: 'DELETE' });
});

test('run_at: the job is scheduled, listed, then runs; a bad run_at is 400; a scheduled job can be cancelled', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const soon = await embed(url, { model: MODEL, documents: docs(3), run_at: inSeconds(1.5) });
  assert.equal(soon.status, 200);
  assert.equal(soon.body.status, 'scheduled');
  assert.ok(soon.body.run_at.endsWith('+00:00'));
  const later = await embed(url, { model: MODEL, documents: docs(3), run_at: new Date(Date.now() + 3600_000).toISOString().replace('Z', '-05:00') });
  assert.equal(later.body.status, 'scheduled');
  const listed = (await call(`${url}/api/batch/jobs?status=scheduled`)).body;
  assert.ok(listed.jobs.some((j: { job_id: string }) => j.job_id === later.body.job_id));
  const done = await waitForStatus(url, soon.body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.ok(Date.parse(done.started_at) >= Date.parse(soon.body.run_at), 'started no earlier than run_at');
  const cancel = await call(`${url}/api/batch/jobs/${later.body.job_id}`, { method: 'DELETE' });
  assert.equal(cancel.status, 200);
  assert.equal((await call(`${url}/api/batch/jobs/${later.body.job_id}`)).body.status, 'cancelled');
  for (const bad of ['tomorrow', '2026-12-01T10:00:00', '2026-13-45T10:00:00Z']) {
    const answer = await embed(url, { model: MODEL, documents: docs(1), run_at: bad });
    assert.equal(answer.status, 400, bad);
    assert.equal(answer.body.code, 'INVALID_RUN_AT', bad);
  }
  // In the past: runs at once.
  const past = await embed(url, { model: MODEL, documents: docs(1), run_at: '2020-01-01T00:00:00Z' });
  assert.equal(past.body.status, 'running');
});

test('run_at survives a restart: a job scheduled when the gateway stops runs after it starts again', async (t) => {
  const node = await startSim(t);
  const first = await startTestGateway(t, { backend: [node.url] });
  const job = await embed(first.url, { model: MODEL, documents: docs(4), run_at: inSeconds(2), priority: 'high' });
  assert.equal(job.body.status, 'scheduled');
  await first.stop();
  const second = await startTestGateway(t, { backend: [node.url], dataDir: first.dataDir });
  const done = await waitForStatus(second.url, job.body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.equal(done.priority, 'high');
});

test('depends_on: the child waits scheduled until its parents complete; runs after, even across a restart', async (t) => {
  const node = await startSim(t);
  const first = await startTestGateway(t, { backend: [node.url] });
  const parent = await embed(first.url, { model: MODEL, documents: docs(3, 'parent'), run_at: inSeconds(2) });
  const done = await embed(first.url, { model: MODEL, documents: docs(1, 'done') });
  await waitForStatus(first.url, done.body.job_id, ['completed']);
  const child = await embed(first.url, { model: MODEL, documents: docs(2, 'child'), depends_on: [parent.body.job_id, done.body.job_id] });
  assert.equal(child.status, 200);
  assert.equal(child.body.status, 'scheduled');
  assert.deepEqual(child.body.depends_on, [parent.body.job_id, done.body.job_id]);
  assert.equal((await call(`${first.url}/api/batch/jobs/${child.body.job_id}`)).body.status, 'scheduled', 'waits for the parent');
  await first.stop();
  const second = await startTestGateway(t, { backend: [node.url], dataDir: first.dataDir });
  const parentDone = await waitForStatus(second.url, parent.body.job_id, ['completed']);
  const childDone = await waitForStatus(second.url, child.body.job_id, ['completed', 'failed']);
  assert.equal(childDone.status, 'completed');
  assert.ok(Date.parse(childDone.started_at) >= Date.parse(parentDone.completed_at), 'child started after its parent completed');
  const unknown = await embed(second.url, { model: MODEL, documents: docs(1), depends_on: ['00000000-0000-4000-8000-000000000000'] });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.code, 'INVALID_DEPENDENCY');
});

test('depends_on: a cancelled or failed parent fails the child with DEPENDENCY_FAILED naming it', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const parent = await embed(url, { model: MODEL, documents: docs(2), run_at: inSeconds(3600) });
  const child = await embed(url, { model: MODEL, documents: docs(3, 'child'), depends_on: [parent.body.job_id] });
  const grandchild = await embed(url, { model: MODEL, documents: docs(1, 'gc'), depends_on: [child.body.job_id] });
  assert.equal((await call(`${url}/api/batch/jobs/${parent.body.job_id}`, { method: 'DELETE' })).status, 200);
  const failed = await waitForStatus(url, child.body.job_id, ['failed', 'completed']);
  assert.equal(failed.status, 'failed');
  assert.equal(failed.errors[0].code, 'DEPENDENCY_FAILED');
  assert.match(failed.errors[0].error, new RegExp(parent.body.job_id));
  assert.equal(failed.progress.failed_items, 3);
  const results = (await call(`${url}/api/batch/results/${child.body.job_id}`)).body;
  assert.deepEqual(results.errors.filter((e: { index: number | null }) => e.index !== null).map((e: { code: string }) => e.code), ['DEPENDENCY_FAILED', 'DEPENDENCY_FAILED', 'DEPENDENCY_FAILED']);
  const gc = await waitForStatus(url, grandchild.body.job_id, ['failed', 'completed']);
  assert.equal(gc.status, 'failed', 'the failure goes down the chain');
  assert.match(gc.errors[0].error, new RegExp(child.body.job_id));
  assert.equal(node.stats().embedCalls, 0, 'nothing of the chain was embedded');
});

test('documents_from: a job type without text results is refused; a text field fills the child from the completed parent, its failed items failed with their index', async (t) => {
  const node = await startSim(t, { maxInputChars: 500 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '4' });
  const parentDocs = docs(5, 'parent');
  parentDocs[2] = 'x'.repeat(2000);
  const parent = await embed(url, { model: MODEL, documents: parentDocs, options: { truncate: false }, run_at: inSeconds(1) });
  const refused = await embed(url, { model: MODEL, documents_from: { job_id: parent.body.job_id, field: 'response' } });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.code, 'INVALID_DEPENDENCY');
  assert.match(refused.body.detail, /embed job has no text field 'response'/);
  const both = await embed(url, { model: MODEL, documents: ['a'], documents_from: { job_id: parent.body.job_id, field: 'response' } });
  assert.equal(both.body.code, 'INVALID_BODY');
  assert.equal((await embed(url, { model: MODEL })).body.code, 'NO_DOCUMENTS');

  // Embedding items have no text; this branch has no generate or chat jobs, so a text field is
  // registered on embed items for the test, standing in for generate's `response`.
  ITEM_TEXT_FIELDS.embed = { test_text: (item) => (item.state === 'done' ? `summary of item ${item.index}` : undefined) };
  t.after(() => (ITEM_TEXT_FIELDS.embed = {}));
  const child = await embed(url, { model: MODEL, documents_from: { job_id: parent.body.job_id, field: 'test_text' } });
  assert.equal(child.status, 200, JSON.stringify(child.body));
  assert.equal(child.body.status, 'scheduled');
  assert.equal(child.body.total_items, 0, 'documents come when the parent completes');
  assert.deepEqual(child.body.depends_on, [parent.body.job_id]);
  const done = await waitForStatus(url, child.body.job_id, ['completed', 'failed']);
  assert.equal(done.status, 'completed');
  assert.deepEqual(done.progress, { total_items: 5, completed_items: 4, failed_items: 1, percent: 100 });
  const results = (await call(`${url}/api/batch/results/${child.body.job_id}`)).body;
  assert.deepEqual(results.errors.map((e: { index: number; code: string }) => [e.index, e.code]), [[2, 'DEPENDENCY_FAILED']]);
  assert.match(results.errors[0].error, new RegExp(`Item 2 of parent job ${parent.body.job_id} failed \\(INPUT_REJECTED`));
  const expected = [0, 1, 3, 4].map((i) => `summary of item ${i}`);
  const got = results.results.filter((r: { embedding: number[] | null }) => r.embedding !== null).map((r: { embedding: number[] }) => r.embedding.map(Math.fround));
  assert.deepEqual(got, expected.map((text) => Array.from(simVector(MODEL, text, 768))), 'the child embedded the parent items\' texts, in order');
});

test('PATCH priority takes effect on a running job: raised to high, it finishes while a low job beside it barely moves', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 5, serial: true });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10', workers: '1' });
  const other = await embed(url, { model: MODEL, documents: docs(3000, 'other'), priority: 'low' });
  const raised = await embed(url, { model: MODEL, documents: docs(400, 'raised'), priority: 'low' });
  const patched = await call(`${url}/api/batch/jobs/${raised.body.job_id}`, { method: 'PATCH', body: { priority: 'high' } });
  assert.equal(patched.body.priority, 'high');
  // The node's own record of the calls it was sent, in order: what the gateway dispatched after
  // the PATCH and until the raised job's last call, however late this test sees the completion.
  const atPatch = node.stats().callSizes.length;
  await waitForStatus(url, raised.body.job_id, ['completed']);
  const otherAtEnd = (await call(`${url}/api/batch/jobs/${other.body.job_id}`)).body;
  assert.equal(otherAtEnd.status, 'running');
  const { callSizes, callFirstInputs } = node.stats();
  const sent = sentUntilLastOf(callFirstInputs, atPatch, 'raised', callSizes);
  const share = sent['other'] ?? 0;
  const raisedAfter = sent['raised'] ?? 0;
  assert.ok(raisedAfter > 0 && raisedAfter <= 400);
  // At equal priority the two would have shared the slots 1:1 (as many documents each); high vs
  // low is 16:1 (the slack covers chunks in flight and, in distributed mode, those run while the
  // queue is reordered).
  assert.ok(share <= raisedAfter / 16 + 75, `the low job was sent ${share} documents while the raised one was sent its last ${raisedAfter}`);
  await call(`${url}/api/batch/jobs/${other.body.job_id}`, { method: 'DELETE' });
});
