/**
 * Live events and follow mode in distributed mode, behind two gateways sharing one Redis: a
 * job submitted on one gateway is followed on the other (SSE, WebSocket, NDJSON follow).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import WebSocket from 'ws';
import { SollolClient, type JobEvent } from '../src/client/index.js';
import { MODEL, docs, startSim, startTestGateway, waitFor } from './helpers.js';
import { deletePrefix, uniquePrefix } from './redisKeys.js';
import { testClient, testRedis } from './redisServer.js';

const server = await testRedis();
if ('skip' in server) {
  test('events in distributed mode', { skip: server.skip }, () => {});
} else {
  const prefix = uniquePrefix('events');
  after(async () => {
    const client = testClient(server.url);
    await deletePrefix(client, prefix);
    client.disconnect();
    await server.stop();
  });

  test('two gateways on one Redis: a job submitted on A is followed on B by SSE, WebSocket and results follow', async (t) => {
    const node = await startSim(t, { delayPerDocMs: 20, serial: true });
    const flags = { backend: [node.url], redis: server.url, redisPrefix: prefix, chunkSize: '2', cache: false } as never;
    const a = await startTestGateway(t, flags);
    const b = await startTestGateway(t, flags);
    const onA = new SollolClient({ baseUrl: a.url });
    const onB = new SollolClient({ baseUrl: b.url });
    const documents = docs(30, 'distributed events');
    const { job_id: jobId } = await onA.submit(MODEL, documents);

    const socket = new WebSocket(`${b.url.replace('http', 'ws')}/api/batch/ws`);
    const wsEvents: any[] = [];
    socket.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (message.type === 'event') wsEvents.push(message);
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    socket.send(JSON.stringify({ type: 'subscribe', job_ids: [jobId] }));

    const follow = (async () => {
      const indexes: number[] = [];
      for await (const item of onB.results(jobId, { follow: true })) {
        assert.ok(item.embedding);
        indexes.push(item.index);
      }
      return indexes;
    })();
    const sse: JobEvent[] = [];
    for await (const event of onB.events(jobId)) sse.push(event);
    assert.equal(sse[0]!.event, 'status');
    assert.ok(sse.some((e) => e.event === 'progress'), 'progress seen on the other gateway');
    assert.equal(sse.at(-1)!.event, 'end');
    assert.equal(sse.at(-1)!.data.completed_items, 30);
    for (let i = 1; i < sse.length; i++) assert.ok(sse[i]!.id > sse[i - 1]!.id);
    assert.deepEqual(await follow, documents.map((_, i) => i));
    await waitFor(() => (wsEvents.some((m) => m.event === 'end') ? true : undefined), 'the WebSocket end event');
    assert.equal(wsEvents.at(-1).data.completed_items, 30);
    socket.close();
  });
}
