/**
 * The HTTP contract tests of the embedded mode, run again against the distributed mode: every
 * gateway these files start uses the Redis store and the BullMQ chunk queue (and works its own
 * chunks), each under its own key prefix, all deleted at the end. A real Redis is required
 * (redisServer.ts starts one when none answers; in CI a missing Redis fails the run).
 */
import { test } from 'node:test';
import { runGatewaysOnRedis } from './helpers.js';
import { redisSuite } from './redisServer.js';

const redis = await redisSuite();
if (redis.skip) {
  test('distributed contract tests', { skip: redis.skip }, () => {});
} else {
  const prefix = redis.prefix('contract');
  runGatewaysOnRedis(redis.url, prefix);
  await import('./batch-lifecycle.test.js');
  await import('./batch-cancel.test.js');
  await import('./batch-validation.test.js');
  await import('./batch-errors.test.js');
  await import('./jobs-list-stats.test.js');
  await import('./jobs-ttl-capacity.test.js');
  await import('./pending.test.js');
  await import('./cache.test.js');
  await import('./seed-compat.test.js');
  await import('./store-restart.test.js');
  await import('./retry.test.js');
  await import('./results-formats.test.js');
  await import('./failover.test.js');
  await import('./scheduler-fairness.test.js');
  await import('./metrics.test.js');
  await import('./invalid-vectors.test.js');
  await import('./poison.test.js');
  await import('./batch-generate.test.js');
  await import('./openai-files.test.js');
  await import('./generation-control.test.js');
  await import('./openai-batches.test.js');
}
