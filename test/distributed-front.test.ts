/**
 * A front gateway that sees its workers (issue 11 items 6 and 7): `sollol up --redis --workers 0`
 * with no backend of its own answers the sync API through a `sollol worker`'s simulated node
 * (the interactive lane over Redis), lists the workers' models in /api/tags and /v1/models,
 * shows their nodes in /api/stats and never loads the embedded model. The worker, started with
 * `--port`, serves its own /api/health and /metrics.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simVector } from '../src/sim/index.js';
import { MODEL, call, docs, startSim, submit, waitFor, waitForStatus } from './helpers.js';
import { redisSuite } from './redisServer.js';
import { spawnGateway, spawnWorker } from './subprocess.js';

const redis = await redisSuite();
const { skip } = redis;

const ENV = { SOLLOL_CHUNK_LOCK: '2', SOLLOL_HEALTH_INTERVAL: '0.2', SOLLOL_SWEEP_INTERVAL: '0.2' };

function sameVectors(got: number[][], texts: string[]): void {
  assert.equal(got.length, texts.length);
  texts.forEach((text, i) => assert.deepEqual(got[i]!.map(Math.fround), Array.from(simVector(MODEL, text, 768)), `vector ${i}`));
}

test('a --workers 0 gateway answers /api/embed, /api/embeddings and /v1/embeddings through a worker, lists its models and nodes; the worker serves /api/health and /metrics', { skip }, async (t) => {
  const prefix = redis.prefix('front');
  const flags = ['--redis', redis.url, '--redis-prefix', prefix];
  const node = await startSim(t, { delayPerCallMs: 5 });
  const worker = await spawnWorker(t, [...flags, '--backend', node.url, '--port', '0'], ENV);
  const workerUrl = /health and metrics on (http:\/\/127\.0\.0\.1:\d+)/.exec(worker.log())?.[1];
  assert.ok(workerUrl, `the worker names its HTTP address: ${worker.log()}`);
  const front = await spawnGateway(t, [...flags, '--workers', '0'], ENV);

  const tags = await waitFor(async () => {
    const answer = await call(`${front.url}/api/tags`);
    return answer.body.models?.length > 0 ? answer.body : undefined;
  }, 'the front gateway to list the worker\'s models');
  const names = (tags.models as { name: string }[]).map((m) => m.name);
  assert.ok(names.includes(`${MODEL}:latest`), `the worker's model is listed: ${names.join(', ')}`);
  assert.ok(!names.some((n) => n.startsWith('use-lite')), 'the embedded model is not listed (nor loaded)');
  const models = (await call(`${front.url}/v1/models`)).body.data as { id: string }[];
  assert.ok(models.some((m) => m.id.startsWith(MODEL)));

  const inputs = docs(7, 'front');
  const before = node.stats().embedCalls;
  const embed = await call(`${front.url}/api/embed`, { body: { model: MODEL, input: inputs } });
  assert.equal(embed.status, 200, JSON.stringify(embed.body).slice(0, 300));
  sameVectors(embed.body.embeddings, inputs);
  assert.ok(node.stats().embedCalls > before, 'the worker\'s node did the work');
  const legacy = await call(`${front.url}/api/embeddings`, { body: { model: MODEL, prompt: inputs[0] } });
  assert.equal(legacy.status, 200);
  sameVectors([legacy.body.embedding], [inputs[0]!]);
  const openai = await call(`${front.url}/v1/embeddings`, { body: { model: MODEL, input: inputs.slice(0, 2) } });
  assert.equal(openai.status, 200);
  sameVectors(openai.body.data.map((d: { embedding: number[] }) => d.embedding), inputs.slice(0, 2));
  const unknown = await call(`${front.url}/api/embed`, { body: { model: 'no-such-model', input: 'x' } });
  assert.equal(unknown.status, 404);

  const stats = (await call(`${front.url}/api/stats`)).body;
  assert.ok(!stats.backends.some((b: { kind: string }) => b.kind === 'embedded'), 'no embedded backend on the front gateway');
  const seen = (stats.workers as { id: string; nodes: { url: string }[] }[]).find((w) => w.id === worker.id);
  assert.ok(seen, 'the worker is in /api/stats');
  assert.ok(seen.nodes.some((n) => n.url === node.url), 'with its node');

  // The batch API accepts the workers' model too.
  const job = await submit(front.url, { model: MODEL, documents: docs(30, 'front batch') });
  assert.equal(job.status, 200);
  await waitForStatus(front.url, job.body.job_id, ['completed']);

  const health = await call(`${workerUrl}/api/health`);
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  assert.equal(health.body.instance_id, worker.id);
  const metrics = (await call<string>(`${workerUrl}/metrics`)).body;
  assert.ok(/^sollol_chunks_completed_total [1-9]/m.test(metrics), 'chunks counted on the worker');
  assert.ok(/^sollol_documents_embedded_total 30$/m.test(metrics), 'documents counted on the worker');
  assert.ok(metrics.includes(`sollol_backend_request_duration_seconds_count{backend="${node.url}",outcome="ok"}`), 'per-node latency');
  assert.ok(!metrics.includes('sollol_jobs_submitted_total'), 'no store-wide series on a worker');
});
