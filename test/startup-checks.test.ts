/**
 * Issue 10 item 8, with `sollol up` as a subprocess: an unusable --data-dir exits non-zero
 * with one line (it used to hang on /proc/nope); each --backend unreachable at start gets one
 * warning line; /api/health says "degraded" with the reasons and /api/ready (and /readyz)
 * answer 503 then, 200 once a backend is up.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { call, startSim, tempDir, waitFor } from './helpers.js';
import { spawnGateway } from './subprocess.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

for (const [what, dataDir] of [
  ['under /proc (used to hang)', () => '/proc/nope'],
  ['a file, not a directory', (dir: string) => {
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    return file;
  }],
  ['below a file', (dir: string) => {
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    return path.join(file, 'data');
  }],
] as const) {
  test(`--data-dir ${what} exits non-zero with one line, before listening`, (t) => {
    const dir = dataDir(tempDir(t));
    // The bound is the spawn timeout: a hang is killed and fails the test below.
    const result = spawnSync(process.execPath, [...CLI, 'up', '--port', '0', '--backend', 'http://127.0.0.1:9', '--data-dir', dir], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(result.signal, null, `killed after 20 s: it hung. stderr: ${result.stderr}`);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, new RegExp(`^sollol: error: --data-dir ${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} .*--data-dir\\n$`));
    assert.doesNotMatch(result.stderr, /listening on/);
  });
}

test('each unreachable --backend gets one warning line at start; health is degraded and ready answers 503 until a backend is up', async (t) => {
  const [a, b] = [await closedPort(), await closedPort()];
  const gateway = await spawnGateway(t, ['--backend', `http://127.0.0.1:${a}`, '--backend', `http://127.0.0.1:${b}`, '--data-dir', tempDir(t)], { SOLLOL_HEALTH_INTERVAL: '0.2' });
  for (const port of [a, b]) {
    const lines = gateway.log().split('\n').filter((line) => line.includes(`backend http://127.0.0.1:${port} is unreachable at start`));
    assert.equal(lines.length, 1, `one warning for port ${port}:\n${gateway.log()}`);
  }
  const health = await call(`${gateway.url}/api/health`);
  assert.equal(health.status, 200, 'health is liveness: it answers 200 while degraded');
  assert.equal(health.body.status, 'degraded');
  assert.deepEqual(health.body.reasons, ['no healthy backend (0 of 2 reachable)']);
  for (const route of ['/api/ready', '/readyz']) {
    const ready = await call(`${gateway.url}${route}`);
    assert.equal(ready.status, 503, route);
    assert.deepEqual(ready.body, { ready: false, status: 'degraded', reasons: ['no healthy backend (0 of 2 reachable)'] }, route);
  }
  assert.equal(await gateway.stop(), 0);
});

test('with a healthy backend, health is ok with no reasons and ready answers 200', async (t) => {
  const node = await startSim(t);
  const gateway = await spawnGateway(t, ['--backend', node.url, '--data-dir', tempDir(t)]);
  assert.doesNotMatch(gateway.log(), /unreachable at start/);
  const health = (await call(`${gateway.url}/api/health`)).body;
  assert.equal(health.status, 'ok');
  assert.deepEqual(health.reasons, []);
  const ready = await waitFor(async () => {
    const answer = await call(`${gateway.url}/api/ready`);
    return answer.status === 200 ? answer : undefined;
  }, 'ready');
  assert.deepEqual(ready.body, { ready: true, status: 'ok', reasons: [] });
  assert.equal(await gateway.stop(), 0);
});
