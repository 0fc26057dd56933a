/**
 * What the typed client retries (src/client/errors.ts), against a real HTTP server on loopback
 * that answers as a gateway does: a submit whose Idempotency-Key is still held by a call a
 * killed gateway started (409 IDEMPOTENCY_IN_PROGRESS, Retry-After) is retried under the same
 * key until it gets its answer; a conflict (another request under the key) is not.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { SollolClient, withRetries } from '../src/client/index.js';

/** A server answering each POST with the next of `answers` (status, code); records the keys it got. */
async function scripted(t: TestContext, answers: readonly [number, string | null][]): Promise<{ url: string; keys: string[] }> {
  const keys: string[] = [];
  let next = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      keys.push(String(req.headers['idempotency-key']));
      const [status, code] = answers[Math.min(next++, answers.length - 1)]!;
      const body = code === null ? { job_id: 'job-1', status: 'running', total_items: 1 } : { detail: `refused: ${code}`, code };
      res.writeHead(status, { 'content-type': 'application/json', ...(code === null ? {} : { 'retry-after': '0' }) });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, keys };
}

test('a submit answered 409 IDEMPOTENCY_IN_PROGRESS is retried under the same key until it gets its answer', async (t) => {
  const gw = await scripted(t, [[409, 'IDEMPOTENCY_IN_PROGRESS'], [409, 'IDEMPOTENCY_IN_PROGRESS'], [202, null]]);
  const client = new SollolClient({ baseUrl: gw.url });
  const retried: string[] = [];
  const answer = await withRetries(() => client.submit('m', ['a'], { idempotencyKey: 'k-1' }), { maxWaitMs: 10_000, onRetry: (error) => retried.push(error.message) });
  assert.equal(answer.job_id, 'job-1');
  assert.deepEqual(gw.keys, ['k-1', 'k-1', 'k-1']);
  assert.equal(retried.length, 2);
});

test('a submit answered 409 IDEMPOTENCY_CONFLICT is not retried', async (t) => {
  const gw = await scripted(t, [[409, 'IDEMPOTENCY_CONFLICT'], [202, null]]);
  const client = new SollolClient({ baseUrl: gw.url });
  await assert.rejects(withRetries(() => client.submit('m', ['a'], { idempotencyKey: 'k-2' }), { maxWaitMs: 10_000 }), { code: 'IDEMPOTENCY_CONFLICT' });
  assert.deepEqual(gw.keys, ['k-2']);
});
