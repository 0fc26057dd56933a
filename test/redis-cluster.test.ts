/**
 * Redis Cluster (issue 11 item 5): a real 3-master cluster started here on free loopback
 * ports (`redis-server --cluster-enabled yes` x3 + `redis-cli --cluster create`). A gateway and
 * a worker (subprocesses) on it, with a hash-tagged prefix: a job submitted on the gateway is
 * completed by the worker with every vector, and all of the deployment's keys share one slot.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';
import { Cluster } from 'ioredis';
import { MODEL, assertAllVectors, call, docs, startSim, submit, tempDir, waitFor, waitForStatus } from './helpers.js';
import { RedisServerProcess } from './redisServer.js';
import { spawnGateway, spawnWorker } from './subprocess.js';

const REDIS_CLI = '/usr/bin/redis-cli';
const skip = fs.existsSync('/usr/bin/redis-server') && fs.existsSync(REDIS_CLI) ? false : 'redis-server / redis-cli are not installed';
const ENV = { SOLLOL_CHUNK_LOCK: '2', SOLLOL_HEALTH_INTERVAL: '0.2', SOLLOL_SWEEP_INTERVAL: '0.2' };

test('on a 3-master Redis Cluster a job submitted on a gateway is completed by a worker', { skip, timeout: 120_000 }, async (t) => {
  const masters: RedisServerProcess[] = [];
  for (let i = 0; i < 3; i++) {
    const dir = tempDir(t, 'sollol-cluster-');
    const server = await RedisServerProcess.start({
      dir,
      args: ['--cluster-enabled', 'yes', '--cluster-config-file', `${dir}/nodes.conf`, '--cluster-node-timeout', '2000'],
    });
    t.after(() => server.stop(true));
    masters.push(server);
  }
  const created = spawnSync(REDIS_CLI, ['--cluster', 'create', ...masters.map((m) => `127.0.0.1:${m.port}`), '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(created.status, 0, created.stdout + created.stderr);
  await waitFor(() => {
    const ok = masters.every((m) => spawnSync(REDIS_CLI, ['-p', String(m.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout.includes('cluster_state:ok'));
    return ok ? true : undefined;
  }, 'the cluster to be ok', 30_000);

  const url = `redis://127.0.0.1:${masters[0]!.port}/?cluster=true`;
  const prefix = '{sollol-cluster-test}:';
  const flags = ['--redis', url, '--redis-prefix', prefix];
  const node = await startSim(t, { delayPerCallMs: 2 });
  await spawnWorker(t, [...flags, '--backend', node.url], ENV);
  const gateway = await spawnGateway(t, [...flags, '--workers', '0', '--chunk-size', '10'], ENV);
  await waitFor(async () => ((await submit(gateway.url, { model: MODEL, documents: ['probe'] })).body.status === 'running' ? true : undefined), 'the gateway to see the worker');

  const documents = docs(120, 'cluster');
  const { body } = await submit(gateway.url, { model: MODEL, documents });
  assert.equal(body.status, 'running');
  const done = await waitForStatus(gateway.url, body.job_id, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, 120);
  await assertAllVectors(gateway.url, body.job_id, documents);
  assert.equal((await call(`${gateway.url}/api/batch/jobs/${body.job_id}`)).body.status, 'completed');

  // Every key of the deployment is on one slot (the prefix's hash tag), so on one master.
  const cluster = new Cluster([{ host: '127.0.0.1', port: masters[0]!.port }]);
  t.after(() => cluster.disconnect());
  const slot = Number(await cluster.cluster('KEYSLOT', `${prefix}stats`));
  const keys = (await Promise.all(cluster.nodes('master').map((n) => n.keys(`${prefix}*`)))).flat();
  assert.ok(keys.length > 5, `the deployment's keys: ${keys.length}`);
  for (const key of keys.slice(0, 50)) assert.equal(Number(await cluster.cluster('KEYSLOT', key)), slot, key);
});
