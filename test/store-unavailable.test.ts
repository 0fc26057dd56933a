/**
 * Store faults at the HTTP edge (issue 10 item 4): a SQLite lock held beyond the busy timeout
 * (another process holding the write lock on the gateway's database file) is STORE_UNAVAILABLE:
 * 503 with Retry-After, health degraded, never a 500 and never a backend's fault; once the lock
 * is released writes succeed again. And every route family maps StoreError the same way.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { FastifyRequest } from 'fastify';
import { toCompatError } from '../src/http/compatErrors.js';
import { fromStoreError } from '../src/http/errorHandler.js';
import { StoreError } from '../src/store/errors.js';
import { classifyStoreFault } from '../src/store/sqlite/faults.js';
import { MODEL, call, startSim, startTestGateway, submit, tempDir, waitFor } from './helpers.js';

test('a write lock held beyond the busy timeout answers 503 STORE_UNAVAILABLE with Retry-After; writes resume once it is released', async (t) => {
  const node = await startSim(t);
  const dataDir = tempDir(t);
  const { url } = await startTestGateway(t, { backend: [node.url], dataDir });
  const locker = new Database(path.join(dataDir, 'sollol.db'));
  t.after(() => {
    if (locker.inTransaction) locker.exec('ROLLBACK');
    locker.close();
  });
  locker.exec('BEGIN IMMEDIATE');
  const refused = await submit(url, { model: MODEL, documents: ['a', 'b'] });
  assert.equal(refused.status, 503, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'STORE_UNAVAILABLE');
  assert.equal(refused.headers.get('retry-after'), '5');
  assert.match(refused.body.detail, /SQLITE_BUSY/);
  const health = (await call(`${url}/api/health`)).body;
  assert.equal(health.status, 'degraded');
  assert.ok(health.reasons.some((r: string) => /store not writable/.test(r)), JSON.stringify(health));
  assert.equal((await call(`${url}/api/batch/jobs`)).status, 200, 'reads go on while writes are locked out');

  locker.exec('ROLLBACK');
  const admitted = await submit(url, { model: MODEL, documents: ['a', 'b'] });
  assert.equal(admitted.status, 200, JSON.stringify(admitted.body));
  await waitFor(async () => ((await call(`${url}/api/ready`)).status === 200 ? true : undefined), 'ready again once a write succeeded');
});

test('SQLite and file-system errors are classified; other errors are left alone', () => {
  const coded = (code: string, message = code) => Object.assign(new Error(message), { code });
  assert.equal(classifyStoreFault(coded('SQLITE_FULL'))?.code, 'STORE_FULL');
  assert.equal(classifyStoreFault(coded('ENOSPC'))?.code, 'STORE_FULL');
  for (const code of ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_IOERR_WRITE', 'SQLITE_IOERR_FSYNC', 'SQLITE_READONLY', 'SQLITE_CANTOPEN', 'SQLITE_CORRUPT', 'EIO']) {
    assert.equal(classifyStoreFault(coded(code))?.code, 'STORE_UNAVAILABLE', code);
  }
  assert.equal(classifyStoreFault(coded('SQLITE_CONSTRAINT_PRIMARYKEY')), undefined, 'a bug of ours stays an INTERNAL_ERROR');
  assert.equal(classifyStoreFault(new TypeError('x')), undefined);
  const fault = classifyStoreFault(coded('SQLITE_FULL', 'database or disk is full'))!;
  assert.ok(fault instanceof StoreError);
  assert.equal((fault.cause as Error).message, 'database or disk is full');
});

test('every route family maps StoreError: 507 STORE_FULL, 503 STORE_UNAVAILABLE with Retry-After', () => {
  const full = new StoreError('STORE_FULL', 'disk full');
  const down = new StoreError('STORE_UNAVAILABLE', 'redis down');
  assert.deepEqual([fromStoreError(full).statusCode, fromStoreError(full).code, fromStoreError(full).headers], [507, 'STORE_FULL', {}]);
  assert.deepEqual([fromStoreError(down).statusCode, fromStoreError(down).code, fromStoreError(down).headers], [503, 'STORE_UNAVAILABLE', { 'retry-after': '5' }]);
  const logged: string[] = [];
  const request = { id: 'r1', body: {}, url: '/api/embed', log: { error: () => logged.push('error'), warn: () => logged.push('warn') } } as unknown as FastifyRequest;
  const compatFull = toCompatError(full, request);
  const compatDown = toCompatError(down, request);
  assert.deepEqual([compatFull.statusCode, compatFull.code], [507, 'STORE_FULL']);
  assert.deepEqual([compatDown.statusCode, compatDown.code, compatDown.headers], [503, 'STORE_UNAVAILABLE', { 'retry-after': '5' }]);
  assert.deepEqual(logged, ['warn', 'warn'], 'logged as a fault of the store, not as an internal error');
});
