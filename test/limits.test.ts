/**
 * Limits with clear errors: the per-key rate limit (429 RATE_LIMITED + Retry-After), the
 * per-key cap on active jobs (429 TOO_MANY_ACTIVE_JOBS), the document length (400
 * DOCUMENT_TOO_LONG naming the item), metadata and body size, and the store's disk cap
 * (507 STORE_FULL, with everything already stored intact and running jobs finishing).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DEFAULTS, resolveConfig } from '../src/config.js';
import { charCount, isTooLong } from '../src/http/limits.js';
import { openSqliteStore } from '../src/store/sqlite/sqliteStore.js';
import { MODEL, call, docs, startSim, startTestGateway, submit, tempDir, waitFor, waitForStatus } from './helpers.js';

const KEY_A = 'alice-key-0123456789abcdef';
const KEY_B = 'bob-key-0123456789abcdef-xyz';
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

test('defaults: rate limit off, 100 active jobs per key, 100,000 characters per document, 10 GiB of store', () => {
  const config = resolveConfig({}, {});
  assert.equal(config.rateLimitPerMinute, 0);
  assert.equal(config.maxActiveJobsPerKey, 100);
  assert.equal(config.maxDocumentChars, 100_000);
  assert.equal(config.maxStoreBytes, 10 * 1024 ** 3);
  assert.equal(DEFAULTS.maxStoreGb, 10);
  const env = resolveConfig({}, { SOLLOL_RATE_LIMIT: '60', SOLLOL_MAX_ACTIVE_JOBS_PER_KEY: '0', SOLLOL_MAX_DOCUMENT_CHARS: '10', SOLLOL_MAX_STORE_GB: '0.5' });
  assert.deepEqual([env.rateLimitPerMinute, env.maxActiveJobsPerKey, env.maxDocumentChars, env.maxStoreBytes], [60, 0, 10, 512 * 1024 ** 2]);
  const flags = resolveConfig({ rateLimit: '5', maxActiveJobsPerKey: '3', maxDocumentChars: '20', maxStoreGb: '0' }, { SOLLOL_RATE_LIMIT: '60' });
  assert.deepEqual([flags.rateLimitPerMinute, flags.maxActiveJobsPerKey, flags.maxDocumentChars, flags.maxStoreBytes], [5, 3, 20, 0]);
  assert.throws(() => resolveConfig({ rateLimit: '-1' }, {}), /--rate-limit must be an integer from 0/);
  assert.throws(() => resolveConfig({ maxDocumentChars: '0' }, {}), /--max-document-chars must be an integer from 1/);
  assert.throws(() => resolveConfig({ maxStoreGb: 'lots' }, {}), /--max-store-gb must be a number of at least 0, got "lots"/);
});

test('rate limit per key: 429 RATE_LIMITED with Retry-After in each family\'s shape; other keys and /api/health unaffected', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], apiKey: [KEY_A, KEY_B], rateLimit: '4' });
  for (let i = 0; i < 4; i++) assert.equal((await call(`${url}/api/batch/jobs`, { headers: bearer(KEY_A) })).status, 200, `request ${i + 1}`);
  const limited = await call(`${url}/api/batch/jobs`, { headers: bearer(KEY_A) });
  assert.equal(limited.status, 429);
  assert.equal(limited.body.code, 'RATE_LIMITED');
  assert.match(limited.body.detail, /Rate limit of 4 requests per minute exceeded for this API key; retry in \d+ s/);
  const retryAfter = Number(limited.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
  assert.deepEqual(Object.keys(limited.body).sort(), ['code', 'detail']);

  const ollama = await call(`${url}/api/tags`, { headers: bearer(KEY_A) });
  assert.equal(ollama.status, 429);
  assert.deepEqual(Object.keys(ollama.body).sort(), ['code', 'error']);
  assert.equal(ollama.body.code, 'RATE_LIMITED');
  assert.ok(ollama.headers.get('retry-after'));
  const openai = await call(`${url}/v1/models`, { headers: bearer(KEY_A) });
  assert.equal(openai.status, 429);
  assert.equal(openai.body.error.code, 'RATE_LIMITED');
  assert.equal(openai.body.error.type, 'invalid_request_error');

  // Another key has its own budget; the health probe is never limited.
  assert.equal((await call(`${url}/api/batch/jobs`, { headers: bearer(KEY_B) })).status, 200);
  for (let i = 0; i < 10; i++) assert.equal((await call(`${url}/api/health`)).status, 200);
});

test('rate limit without keys: per client address', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], rateLimit: '2' });
  assert.equal((await call(`${url}/api/stats`)).status, 200);
  assert.equal((await call(`${url}/api/stats`)).status, 200);
  const limited = await call(`${url}/api/stats`);
  assert.equal(limited.status, 429);
  assert.match(limited.body.detail, /for this client/);
});

test('active-jobs cap per key: 429 TOO_MANY_ACTIVE_JOBS with Retry-After; other keys still submit; room returns when one ends', async (t) => {
  const node = await startSim(t, { hang: true });
  t.after(() => node.configure({ hang: false }));
  const { url } = await startTestGateway(t, { backend: [node.url], apiKey: [KEY_A, KEY_B], maxActiveJobsPerKey: '2' });
  const post = (key: string, prefix: string) => call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(2, prefix) }, headers: bearer(key) });
  const first = await post(KEY_A, 'a1');
  const second = await post(KEY_A, 'a2');
  assert.equal(first.status, 200);
  assert.equal(second.status, 200);
  const third = await post(KEY_A, 'a3');
  assert.equal(third.status, 429);
  assert.equal(third.body.code, 'TOO_MANY_ACTIVE_JOBS');
  assert.match(third.body.detail, /^Owner 'key-[0-9a-f]{12}' already has 2 pending or running jobs, the most one key may have \(--max-active-jobs-per-key 2\)/);
  assert.equal(third.headers.get('retry-after'), '10');
  assert.equal((await post(KEY_B, 'b1')).status, 200, 'the cap is per key');

  assert.equal((await call(`${url}/api/batch/jobs/${first.body.job_id}`, { method: 'DELETE', headers: bearer(KEY_A) })).status, 200);
  assert.equal((await post(KEY_A, 'a4')).status, 200, 'a cancelled job no longer counts');
  // A retry is a new job of the same owner: capped too.
  const retry = await call(`${url}/api/batch/jobs/${first.body.job_id}/retry`, { method: 'POST', headers: bearer(KEY_A) });
  assert.equal(retry.status, 429);
  assert.equal(retry.body.code, 'TOO_MANY_ACTIVE_JOBS');
  const stats = (await call(`${url}/api/stats`, { headers: bearer(KEY_A) })).body.batch_jobs;
  assert.equal(stats.active_jobs + stats.pending_jobs, 2);
});

test('document length: 400 DOCUMENT_TOO_LONG naming the item, on the batch and the sync routes; counted in characters', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], maxDocumentChars: '50' });
  const documents = ['short', 'x'.repeat(50), 'y'.repeat(51), 'z'.repeat(500)];
  const batch = await submit(url, { model: MODEL, documents });
  assert.equal(batch.status, 400);
  assert.equal(batch.body.code, 'DOCUMENT_TOO_LONG');
  assert.equal(batch.body.detail, 'documents[2] is 51 characters; the gateway accepts at most 50 per document (--max-document-chars): split it into smaller documents');
  assert.deepEqual((await call(`${url}/api/batch/jobs`)).body, { jobs: [], total: 0 }, 'nothing admitted');
  // 50 emoji are 100 UTF-16 units but 50 characters.
  const emoji = '\u{1F600}'.repeat(50);
  const ok = await submit(url, { model: MODEL, documents: ['x'.repeat(50), emoji] });
  assert.equal(ok.status, 200);
  await waitForStatus(url, ok.body.job_id, ['completed']);
  // Schema errors still come first.
  assert.equal((await submit(url, { model: MODEL, documents: ['y'.repeat(60), 3] })).body.code, 'INVALID_DOCUMENT');

  const ollama = await call(`${url}/api/embed`, { body: { model: MODEL, input: ['a', 'b'.repeat(51)] } });
  assert.equal(ollama.status, 400);
  assert.equal(ollama.body.code, 'DOCUMENT_TOO_LONG');
  assert.match(ollama.body.error, /^input\[1\] is 51 characters/);
  const legacy = await call(`${url}/api/embeddings`, { body: { model: MODEL, prompt: 'p'.repeat(80) } });
  assert.equal(legacy.status, 400);
  assert.match(legacy.body.error, /^prompt is 80 characters/);
  const openai = await call(`${url}/v1/embeddings`, { body: { model: MODEL, input: 'q'.repeat(51) } });
  assert.equal(openai.status, 400);
  assert.equal(openai.body.error.code, 'DOCUMENT_TOO_LONG');
  assert.equal(openai.body.error.param, 'input');
  assert.equal((await call(`${url}/api/embed`, { body: { model: MODEL, input: emoji } })).status, 200);

  assert.equal(charCount('\u{1F600}a\u{1F600}'), 3);
  assert.equal(charCount('\uD800'), 1, 'a lone surrogate is one character');
  assert.equal(isTooLong('\u{1F600}'.repeat(3), 3), false);
  assert.equal(isTooLong('abcd', 3), true);
});

test('metadata and body size limits keep answering their codes', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], bodyLimitMb: '0.05' });
  const metadata = await submit(url, { model: MODEL, documents: ['a'], metadata: { blob: 'm'.repeat(17 * 1024) } });
  assert.equal(metadata.status, 400);
  assert.equal(metadata.body.code, 'INVALID_METADATA');
  const body = await submit(url, { model: MODEL, documents: ['b'.repeat(60 * 1024)] });
  assert.equal(body.status, 413);
  assert.equal(body.body.code, 'BODY_TOO_LARGE');
});

test('store cap: new jobs get 507 STORE_FULL; stored jobs stay readable, a running job finishes, deleting still works', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 100 });
  const dataDir = tempDir(t);
  const common = { backend: [node.url], dataDir, chunkSize: '1', workers: '1' };
  const first = await startTestGateway(t, common);
  const done = await submit(first.url, { model: MODEL, documents: docs(3, 'done') });
  await waitForStatus(first.url, done.body.job_id, ['completed']);
  const running = await submit(first.url, { model: MODEL, documents: docs(20, 'running') });
  await waitFor(async () => ((await call(`${first.url}/api/batch/jobs/${running.body.job_id}`)).body.progress.completed_items > 0 ? true : undefined), 'some progress');
  await first.stop();

  // The same store, now over a tiny cap (about 10 KiB): the stored jobs are safe.
  const full = await startTestGateway(t, { ...common, maxStoreGb: '0.00001' });
  const refused = await submit(full.url, { model: MODEL, documents: ['new'] });
  assert.equal(refused.status, 507);
  assert.equal(refused.body.code, 'STORE_FULL');
  assert.match(refused.body.detail, /^The job store is full: it holds [\d.]+ (KiB|MiB), over its cap of 10.5 KiB \(--max-store-gb\)\./);
  assert.match(refused.body.detail, /DELETE \/api\/batch\/results\/\{job_id\}/);
  assert.match(refused.body.detail, /--job-ttl/);
  assert.match(refused.body.detail, /larger --max-store-gb/);

  const finished = await waitForStatus(full.url, running.body.job_id, ['completed', 'failed']);
  assert.equal(finished.status, 'completed', 'the job that was running keeps writing and completes');
  assert.equal(finished.progress.completed_items, 20);
  const results = (await call(`${full.url}/api/batch/results/${done.body.job_id}`)).body;
  assert.equal(results.results.length, 3);
  assert.ok(results.results.every((r: { embedding: unknown }) => Array.isArray(r.embedding)));

  const retry = await call(`${full.url}/api/batch/jobs/${done.body.job_id}/retry`, { method: 'POST' });
  assert.equal(retry.status, 507, 'a retry is a new job');
  assert.equal((await call(`${full.url}/api/batch/results/${done.body.job_id}`, { method: 'DELETE' })).body.purged, true);
  assert.equal((await call(`${full.url}/api/stats`)).body.batch_jobs.stored_jobs, 1);
});

test('the store counts pages in use: deleting a job makes room without shrinking the file', async (t) => {
  const dir = tempDir(t);
  const store = openSqliteStore(path.join(dir, 'db'), { cache: { maxBytes: 0 } });
  t.after(() => store.close());
  const empty = await store.storedBytes();
  const admission = await store.admit(
    { id: '00000000-0000-4000-8000-000000000001', owner: 'o', model: MODEL, status: 'running', createdAt: Date.now(), metadata: {}, options: { truncate: true }, documents: docs(200) },
    { maxJobs: 10, now: Date.now() },
  );
  assert.ok(admission.admitted);
  await store.recordChunk(admission.job.id, { done: docs(200).map((_, index) => ({ index, vector: new Float32Array(1024).fill(index), truncated: false })), failed: [] });
  await store.transition(admission.job.id, 'completed', { at: Date.now(), expiresAt: Date.now() + 60_000 });
  const full = await store.storedBytes();
  const fullPages = full - (await store.footprint()).wal_bytes;
  assert.ok(full > empty + 200 * 4096, `${full} bytes after 200 vectors of 4 KiB (empty: ${empty})`);
  assert.equal(await store.purge({ kind: 'admin' }, admission.job.id), 'purged');
  const after = await store.storedBytes();
  assert.ok(after < full, `${after} bytes after the delete (was ${full})`);
  // The write-ahead log is counted (it takes disk too, issue 10); freed pages are not (they are reused for new jobs).
  const wal = fs.statSync(path.join(dir, 'db/sollol.db-wal')).size;
  assert.ok(wal > 0 && after >= wal, `counted ${after} bytes, the WAL alone holds ${wal}`);
  const afterPages = after - (await store.footprint()).wal_bytes;
  assert.ok(fullPages - afterPages >= 150 * 4096, `the delete freed ${fullPages - afterPages} bytes of pages`);

  // The per-owner cap is part of the same atomic admission.
  const job = (n: number, owner: string) => ({ id: `00000000-0000-4000-8000-00000000001${n}`, owner, model: MODEL, status: 'running' as const, createdAt: Date.now(), metadata: {}, options: { truncate: true }, documents: ['d'] });
  const policy = { maxJobs: 10, now: Date.now(), maxActivePerOwner: 1 };
  assert.equal((await store.admit(job(1, 'o'), policy)).admitted, true);
  assert.deepEqual(await store.admit(job(2, 'o'), policy), { admitted: false, reason: 'owner-active', activeJobs: 1 });
  assert.equal((await store.admit(job(3, 'p'), policy)).admitted, true);
  const counters = await store.counters({ kind: 'owner', owner: 'o' });
  assert.equal(counters.totalJobsCreated, 2);
  assert.equal(counters.totalJobsCompleted, 1);
  assert.equal((await store.counters({ kind: 'admin' })).totalJobsCreated, 3);
});
