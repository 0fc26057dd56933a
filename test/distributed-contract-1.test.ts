/** The embedded mode's HTTP contract tests on Redis, first half (distributedContract.ts). */
import { contractOnRedis } from './distributedContract.js';

await contractOnRedis('1', [
  './batch-lifecycle.test.ts',
  './batch-cancel.test.ts',
  './batch-validation.test.ts',
  './batch-errors.test.ts',
  './jobs-list-stats.test.ts',
  './jobs-ttl-capacity.test.ts',
  './pending.test.ts',
  './cache.test.ts',
  './seed-compat.test.ts',
  './store-restart.test.ts',
  './retry.test.ts',
  './results-formats.test.ts',
  './failover.test.ts',
  './generation-control.test.ts',
]);
