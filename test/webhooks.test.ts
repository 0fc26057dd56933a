/**
 * Webhooks over real HTTP: a receiver on loopback (allowed by --webhook-allow-hosts 127.0.0.1)
 * gets the signed POST when a job ends; failures are retried with backoff, shown on the job,
 * carried across a restart, and given up after the bounded time. Hosts not allowed are 400.
 * Runs on Redis too through test/job-control-distributed.test.ts.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { webhookSignature } from '../src/jobs/webhooks.js';
import { MODEL, call, docs, startSim, startTestGateway, tempDir, waitFor } from './helpers.js';

const SECRET = 'webhook-secret-0123456789';
const RETRY_FAST = { SOLLOL_WEBHOOK_RETRY_BASE: '0.05' };

interface Received {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A webhook receiver on 127.0.0.1 answering each POST with the next status of `answers` (the last one repeats). */
async function receiver(t: TestContext, answers: number[]): Promise<{ url: string; received: Received[]; answers: number[] }> {
  const received: Received[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      const status = answers.length > 1 ? answers.shift()! : answers[0]!;
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address() as { port: number };
  return { url: `http://127.0.0.1:${address.port}/hook`, received, answers };
}

const submitWith = (url: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(3), ...body }, headers });

async function webhookOf(url: string, jobId: string, headers: Record<string, string> = {}) {
  return (await call(`${url}/api/batch/jobs/${jobId}`, { headers })).body.webhook as { state: string; attempts: { status_code: number | null; error?: string }[] };
}

test('callback_url is refused with a clear 400 unless its host is in --webhook-allow-hosts', async (t) => {
  const node = await startSim(t);
  const closed = await startTestGateway(t, { backend: [node.url], webhookSecret: SECRET });
  const off = await submitWith(closed.url, { callback_url: 'http://127.0.0.1:9/hook' });
  assert.equal(off.status, 400);
  assert.equal(off.body.code, 'WEBHOOK_NOT_ALLOWED');
  assert.match(off.body.detail, /--webhook-allow-hosts/);
  const open = await startTestGateway(t, { backend: [node.url], webhookSecret: SECRET, webhookAllowHosts: ['127.0.0.1'] });
  for (const [target, code] of [
    ['http://169.254.169.254/latest/meta-data', 'WEBHOOK_NOT_ALLOWED'],
    ['http://localhost:80/', 'WEBHOOK_NOT_ALLOWED'],
    ['ftp://127.0.0.1/x', 'INVALID_CALLBACK_URL'],
    ['not a url', 'INVALID_CALLBACK_URL'],
    ['http://user:pw@127.0.0.1/x', 'INVALID_CALLBACK_URL'],
  ] as const) {
    const answer = await submitWith(open.url, { callback_url: target });
    assert.equal(answer.status, 400, target);
    assert.equal(answer.body.code, code, target);
  }
  assert.equal((await call(`${open.url}/api/batch/jobs`)).body.total, 0, 'no job was made');
  const noSecret = await startTestGateway(t, { backend: [node.url], webhookAllowHosts: ['127.0.0.1'] });
  const unsigned = await submitWith(noSecret.url, { callback_url: 'http://127.0.0.1:9/hook' });
  assert.equal(unsigned.body.code, 'WEBHOOK_NOT_ALLOWED');
  assert.match(unsigned.body.detail, /--webhook-secret/);
});

test('the terminal state is POSTed signed; failures are retried with backoff and every attempt is shown on the job', async (t) => {
  const node = await startSim(t);
  const hook = await receiver(t, [500, 503, 200]);
  const { url } = await startTestGateway(t, { backend: [node.url], webhookSecret: SECRET, webhookAllowHosts: ['127.0.0.1'] }, RETRY_FAST);
  const job = await submitWith(url, { callback_url: hook.url });
  assert.equal(job.status, 200, JSON.stringify(job.body));
  const delivered = await waitFor(async () => {
    const w = await webhookOf(url, job.body.job_id);
    return w.state === 'delivered' ? w : undefined;
  }, 'the webhook to be delivered');
  assert.deepEqual(delivered.attempts.map((a) => a.status_code), [500, 503, 200]);
  assert.equal(hook.received.length, 3);
  const last = hook.received[2]!;
  const body = JSON.parse(last.body);
  assert.deepEqual(Object.keys(body).sort(), ['completed_at', 'job_id', 'progress', 'status']);
  assert.equal(body.job_id, job.body.job_id);
  assert.equal(body.status, 'completed');
  assert.equal(body.progress.completed_items, 3);
  const timestamp = String(last.headers['x-sollol-timestamp']);
  assert.match(timestamp, /^\d{10}$/);
  assert.equal(last.headers['x-sollol-signature'], webhookSignature(SECRET, timestamp, last.body));
  assert.notEqual(last.headers['x-sollol-signature'], webhookSignature('another-secret-0123456', timestamp, last.body));
  const status = (await call(`${url}/api/batch/jobs/${job.body.job_id}`)).body;
  assert.equal(status.callback_url, hook.url);
});

test('a cancelled job is reported too; a per-key webhook_secret from the keys file signs that key\'s webhooks', async (t) => {
  const node = await startSim(t);
  const hook = await receiver(t, [200]);
  const dir = tempDir(t);
  const file = path.join(dir, 'keys.txt');
  fs.writeFileSync(file, 'alice-key-0123456789abcdef name=alice webhook_secret=alice-secret-0123456789\n');
  const { url } = await startTestGateway(t, { backend: [node.url], apiKeysFile: file, webhookSecret: SECRET, webhookAllowHosts: ['127.0.0.1'] }, RETRY_FAST);
  const auth = { authorization: 'Bearer alice-key-0123456789abcdef' };
  const job = await submitWith(url, { callback_url: hook.url, run_at: new Date(Date.now() + 3600_000).toISOString() }, auth);
  assert.equal(job.status, 200, JSON.stringify(job.body));
  await call(`${url}/api/batch/jobs/${job.body.job_id}`, { method: 'DELETE', headers: auth });
  await waitFor(async () => ((await webhookOf(url, job.body.job_id, auth)).state === 'delivered' ? true : undefined), 'delivery');
  const got = hook.received[0]!;
  assert.equal(JSON.parse(got.body).status, 'cancelled');
  const ts = String(got.headers['x-sollol-timestamp']);
  assert.equal(got.headers['x-sollol-signature'], webhookSignature('alice-secret-0123456789', ts, got.body));
});

test('a webhook still retrying when the gateway stops is delivered after it starts again; past the retry time it is given up', async (t) => {
  const node = await startSim(t);
  const hook = await receiver(t, [500]);
  const flags = { backend: [node.url], webhookSecret: SECRET, webhookAllowHosts: ['127.0.0.1'] };
  const first = await startTestGateway(t, flags, RETRY_FAST);
  const job = await submitWith(first.url, { callback_url: hook.url });
  await waitFor(async () => ((await webhookOf(first.url, job.body.job_id)).attempts.length >= 2 ? true : undefined), 'two failed attempts');
  await first.stop();
  const failedBefore = hook.received.length;
  hook.answers.splice(0, hook.answers.length, 200);
  const second = await startTestGateway(t, { ...flags, dataDir: first.dataDir }, RETRY_FAST);
  const delivered = await waitFor(async () => {
    const w = await webhookOf(second.url, job.body.job_id);
    return w.state === 'delivered' ? w : undefined;
  }, 'delivery after the restart');
  assert.equal(delivered.attempts.length, failedBefore + 1);
  assert.deepEqual(delivered.attempts.slice(0, -1).map((a) => a.status_code), Array(failedBefore).fill(500));

  const giveUp = await startTestGateway(t, flags, { ...RETRY_FAST, SOLLOL_WEBHOOK_RETRY_FOR: '0.3' });
  const deadHook = await receiver(t, [500]);
  const doomed = await submitWith(giveUp.url, { callback_url: deadHook.url });
  const failed = await waitFor(async () => {
    const w = await webhookOf(giveUp.url, doomed.body.job_id);
    return w.state === 'failed' ? w : undefined;
  }, 'the webhook to be given up');
  assert.ok(failed.attempts.length >= 2 && failed.attempts.every((a) => a.status_code === 500));
  const count = deadHook.received.length;
  assert.equal(count, failed.attempts.length, 'no attempt after giving up');
});
