/** The job-control HTTP tests (job-control.test.ts) again in the distributed mode: Redis store, BullMQ chunk queue. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, runGatewaysOnRedis, startSim, startTestGateway } from './helpers.js';
import { redisSuite } from './redisServer.js';

const redis = await redisSuite();
if (redis.skip) {
  test('distributed job-control tests', { skip: redis.skip }, () => {});
} else {
  const prefix = redis.prefix('jobctl');
  runGatewaysOnRedis(redis.url, prefix);
  await import('./job-control.test.js');
  await import('./webhooks.test.js');
  await import('./templates-autobatch.test.js');

  test('Idempotency-Key across two gateways on one Redis: concurrent calls with one key make one job', async (t) => {
    const node = await startSim(t, { delayPerCallMs: 2 });
    const shared = { backend: [node.url], redis: redis.url, redisPrefix: `${prefix}two-gateways:` };
    const [a, b] = [await startTestGateway(t, shared), await startTestGateway(t, shared)];
    const body = { model: MODEL, documents: docs(3) };
    const answers = await Promise.all([a, b, a, b, b, a].map((gw) => call(`${gw.url}/api/batch/embed`, { body, headers: { 'idempotency-key': 'lb-retry' } })));
    assert.deepEqual(answers.map((x) => x.status), [200, 200, 200, 200, 200, 200]);
    assert.equal(new Set(answers.map((x) => x.body.job_id)).size, 1, 'one job id for all six');
    assert.equal((await call(`${a.url}/api/batch/jobs`)).body.total, 1, 'one job made');
  });
}
