/**
 * The HTTP contract tests of the embedded mode, run again against the distributed mode: every
 * gateway the named files start uses the Redis store and the BullMQ chunk queue (and works its
 * own chunks), each under its own key prefix, all deleted at the end. A real Redis is required
 * (redisServer.ts starts one when none answers; in CI a missing Redis fails the run).
 * The files are split over distributed-contract-*.test.ts so that the runner can run them beside
 * other files (`--test-concurrency` in package.json): one file's tests run one after another.
 */
import { test } from 'node:test';
import { runGatewaysOnRedis } from './helpers.js';
import { redisSuite } from './redisServer.js';

/** Imports each contract test file (names relative to this folder) with its gateways on Redis. */
export async function contractOnRedis(label: string, files: readonly string[]): Promise<void> {
  const redis = await redisSuite();
  if (redis.skip) {
    test(`distributed contract tests (${label})`, { skip: redis.skip }, () => {});
    return;
  }
  runGatewaysOnRedis(redis.url, redis.prefix(`contract-${label}`));
  for (const file of files) await import(new URL(file, import.meta.url).href);
}
