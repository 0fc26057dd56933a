/**
 * Global numbers in the distributed mode (issue 11 item 3): two gateways on one Redis share
 * the rate limit (counted in Redis), report the same store-wide job totals (gauges read at
 * scrape time: aggregate with max()) and their own process-local counters (sum() over the
 * gateways is the deployment's figure).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';
import { redisSuite } from './redisServer.js';

const redis = await redisSuite();
const { skip, client } = redis;

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? Number.NaN : Number(line.slice(name.length + 1));
}

test('two gateways on one Redis share one rate limit: the limit holds across them, not once per gateway', { skip }, async (t) => {
  const prefix = redis.prefix('ratelimit');
  const node = await startSim(t);
  const flags = { redis: redis.url, redisPrefix: prefix, backend: [node.url], rateLimit: '6' };
  const g1 = await startTestGateway(t, flags);
  const g2 = await startTestGateway(t, flags);
  for (let i = 0; i < 3; i++) {
    assert.equal((await call(`${g1.url}/api/batch/jobs`)).status, 200, `g1 request ${i + 1}`);
    assert.equal((await call(`${g2.url}/api/batch/jobs`)).status, 200, `g2 request ${i + 1}`);
  }
  for (const url of [g1.url, g2.url]) {
    const limited = await call(`${url}/api/batch/jobs`);
    assert.equal(limited.status, 429, 'the seventh request of the minute is refused on either gateway');
    assert.equal(limited.body.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  }
  const keys = await client!.keys(`${prefix}ratelimit:*`);
  assert.equal(keys.length, 1, 'one counter in Redis for the client');
});

test('/metrics: store-wide job totals are the same on every gateway; process-local counters sum to the deployment\'s figure', { skip }, async (t) => {
  const prefix = redis.prefix('metrics');
  const node = await startSim(t, { delayPerCallMs: 5 });
  const flags = { redis: redis.url, redisPrefix: prefix, backend: [node.url], workers: '2', chunkSize: '10' };
  const g1 = await startTestGateway(t, flags);
  const g2 = await startTestGateway(t, flags);
  await waitFor(async () => ((await client!.scard(`${prefix}workers`)) >= 2 ? true : undefined), 'both gateways to register as workers');
  const ids: string[] = [];
  for (const [i, g] of [g1, g2, g1].entries()) {
    const { body } = await submit(g.url, { model: MODEL, documents: docs(100, `metrics ${i}`) });
    ids.push(body.job_id as string);
  }
  for (const id of ids) await waitForStatus(g1.url, id, ['completed']);

  const scrapes = await Promise.all([g1, g2].map(async (g) => (await call<string>(`${g.url}/metrics`)).body));
  for (const text of scrapes) {
    assert.match(text, /^# TYPE sollol_jobs_submitted_total gauge$/m, 'store-wide totals are gauges read at scrape time');
    assert.equal(sample(text, 'sollol_jobs_submitted_total'), 3, 'the store-wide total, the same on each gateway');
    assert.equal(sample(text, 'sollol_jobs_completed_total'), 3);
    assert.match(text, /^# TYPE sollol_documents_embedded_total counter$/m);
  }
  const embedded = scrapes.map((text) => sample(text, 'sollol_documents_embedded_total'));
  assert.equal(embedded[0]! + embedded[1]!, 300, `process-local counters sum to the documents embedded (${embedded.join(' + ')})`);
});
