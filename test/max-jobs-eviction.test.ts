/** `--max-jobs`: a finished job is evicted before its TTL to admit a new one, and the gateway logs it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, submit, tempDir, waitFor, waitForStatus } from './helpers.js';
import { spawnGateway } from './subprocess.js';

test('at --max-jobs the oldest finished job is evicted before its TTL, and each eviction is logged', async (t) => {
  const node = await startSim(t);
  const gateway = await spawnGateway(t, ['--backend', node.url, '--data-dir', tempDir(t), '--max-jobs', '1', '--job-ttl', '3600']);
  const first = (await submit(gateway.url, { model: MODEL, documents: docs(2) })).body.job_id as string;
  await waitForStatus(gateway.url, first, ['completed']);
  assert.doesNotMatch(gateway.log(), /evicted/);
  const second = (await submit(gateway.url, { model: MODEL, documents: docs(2, 'second') })).body.job_id as string;
  assert.equal((await call(`${gateway.url}/api/batch/jobs/${first}`)).status, 404, 'evicted although its TTL is an hour');
  await waitFor(() => (/finished jobs evicted to admit a new one/.test(gateway.log()) ? true : undefined), 'the eviction log line');
  assert.match(gateway.log(), /"evicted":1/);
  await waitForStatus(gateway.url, second, ['completed']);
  await gateway.stop();
});
