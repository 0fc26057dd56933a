/** The embedded mode's HTTP contract tests on Redis, second half (distributedContract.ts). */
import { contractOnRedis } from './distributedContract.js';

await contractOnRedis('2', [
  './scheduler-fairness.test.ts',
  './metrics.test.ts',
  './invalid-vectors.test.ts',
  './poison.test.ts',
  './batch-generate.test.ts',
  './openai-files.test.ts',
  './openai-batches.test.ts',
]);
