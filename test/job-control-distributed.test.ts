/** The job-control HTTP tests (job-control.test.ts) again in the distributed mode: Redis store, BullMQ chunk queue. */
import { after, test } from 'node:test';
import { runGatewaysOnRedis } from './helpers.js';
import { deletePrefix, uniquePrefix } from './redisKeys.js';
import { testClient, testRedis } from './redisServer.js';

const server = await testRedis();
if ('skip' in server) {
  test('distributed job-control tests', { skip: server.skip }, () => {});
} else {
  const prefix = uniquePrefix('jobctl');
  runGatewaysOnRedis(server.url, prefix);
  after(async () => {
    const client = testClient(server.url);
    await deletePrefix(client, prefix);
    client.disconnect();
    await server.stop();
  });
  await import('./job-control.test.js');
  await import('./webhooks.test.js');
  await import('./templates-autobatch.test.js');
}
