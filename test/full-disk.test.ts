/**
 * Issue 10 item 4: a full disk is survived. The data directory is a 50 MB tmpfs the test
 * mounts itself (CI runs as root; elsewhere the test is skipped with the reason, and fails
 * instead when CI=true). A filler file leaves only a few MB free, so two running jobs fill
 * the disk: new jobs get 507 STORE_FULL (never 500), health says degraded and /api/ready 503,
 * cancel and DELETE /api/batch/results/{id} still work, and once the filler is deleted the
 * job that was running goes on by itself and completes with every vector.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MODEL, assertAllVectors, call, docs, startSim, startTestGateway, submit, waitFor } from './helpers.js';
import { mountTmpfs } from './tmpfs.js';

const MiB = 1024 * 1024;

function freeBytes(dir: string): number {
  const stats = fs.statfsSync(dir);
  return stats.bavail * stats.bsize;
}

test('on a full disk: 507 STORE_FULL for new jobs, degraded health, cancel and delete work, and the running job completes once space is back', async (t) => {
  const mounted = mountTmpfs(50);
  if ('skip' in mounted) return t.skip(mounted.skip);
  let unmounted = false;
  const node = await startSim(t, { delayPerCallMs: 20 }).catch((error: unknown) => {
    mounted.unmount();
    unmounted = true;
    throw error;
  });
  const dataDir = path.join(mounted.dir, 'data');
  const { url } = await startTestGateway(t, { backend: [node.url], dataDir, chunkSize: '50' }).finally(() => {
    // After the gateway's stop hook (registered by startTestGateway when it started).
    if (!unmounted) t.after(mounted.unmount);
  });
  assert.equal((await call(`${url}/api/ready`)).status, 200);

  // Leave 6 MB: about a third of what the two jobs below write (vectors twice, with the cache on).
  const filler = path.join(mounted.dir, 'filler');
  fs.writeFileSync(filler, Buffer.alloc(Math.max(0, freeBytes(mounted.dir) - 6 * MiB)));
  const kept = docs(3000, 'kept');
  const first = await submit(url, { model: MODEL, documents: kept });
  const second = await submit(url, { model: MODEL, documents: docs(3000, 'dropped') });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(second.status, 200, JSON.stringify(second.body));

  const health = await waitFor(async () => {
    const answer = (await call(`${url}/api/health`)).body;
    return answer.status === 'degraded' ? answer : undefined;
  }, 'health to say degraded once the disk is full', 60_000);
  assert.ok(health.reasons.some((r: string) => /store not writable/.test(r)), JSON.stringify(health));
  const ready = await call(`${url}/api/ready`);
  assert.equal(ready.status, 503);
  assert.equal(ready.body.ready, false);

  const refused = await submit(url, { model: MODEL, documents: ['one more'] });
  assert.equal(refused.status, 507, JSON.stringify(refused.body));
  assert.equal(refused.body.code, 'STORE_FULL');
  assert.match(refused.body.detail, /DELETE \/api\/batch\/results/);

  const running = (await call(`${url}/api/batch/jobs/${first.body.job_id}`)).body;
  assert.equal(running.status, 'running', 'a job whose writes fail waits; it is not failed');
  assert.ok(running.progress.completed_items < 3000);

  // Deleting is how a user makes room: both work on the full disk.
  const cancelled = await call(`${url}/api/batch/jobs/${second.body.job_id}`, { method: 'DELETE' });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  const purged = await call(`${url}/api/batch/results/${second.body.job_id}`, { method: 'DELETE' });
  assert.equal(purged.status, 200, JSON.stringify(purged.body));
  assert.equal((await call(`${url}/api/batch/jobs/${second.body.job_id}`)).status, 404);

  const stats = (await call(`${url}/api/stats`)).body.store;
  assert.equal(stats.kind, 'sqlite');
  for (const key of ['used_bytes', 'database_file_bytes', 'wal_bytes', 'disk_free_bytes']) assert.equal(typeof stats[key], 'number', key);

  fs.rmSync(filler);
  let last: unknown;
  const done = await waitFor(async () => {
    const status = (await call(`${url}/api/batch/jobs/${first.body.job_id}`)).body;
    last = status;
    return ['completed', 'failed', 'cancelled'].includes(status.status) ? status : undefined;
  }, 'the job to go on by itself once space is back', 60_000).catch((error: Error) => {
    throw new Error(`${error.message}; last status: ${JSON.stringify(last)}`);
  });
  assert.equal(done.status, 'completed', JSON.stringify(done));
  assert.equal(done.progress.completed_items, 3000);
  assert.equal(done.progress.failed_items, 0);
  await assertAllVectors(url, first.body.job_id, kept);
  await waitFor(async () => ((await call(`${url}/api/ready`)).status === 200 ? true : undefined), 'ready again');
  assert.equal((await submit(url, { model: MODEL, documents: ['after'] })).status, 200);
});
