/** `sollol up` as a subprocess: good flags serve, bad flags exit non-zero with one clear line before listening. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { MODEL, call, docs, startSim, submit, tempDir, waitForStatus } from './helpers.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

function runCli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
}

test('sollol up with good flags serves the batch API on the given port and stops cleanly on SIGTERM', async (t) => {
  const node = await startSim(t);
  const dataDir = tempDir(t);
  const child = spawn(process.execPath, [...CLI, 'up', '--port', '0', '--backend', node.url, '--data-dir', dataDir, '--dask-workers', '2', '--ray-workers', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${log}`)));
  });
  assert.match(log, /--ray-workers is accepted for compatibility and has no effect/);
  assert.match(log, /workers: 2/);
  const { body } = await submit(url, { model: MODEL, documents: docs(3) });
  const status = await waitForStatus(url, body.job_id, ['completed']);
  assert.equal(status.progress.completed_items, 3);
  assert.equal((await call(`${url}/api/health`)).body.status, 'ok');
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});

for (const [args, pattern] of [
  [['up', '--port', 'abc'], /--port must be an integer from 0 to 65535, got "abc"/],
  [['up', '--port', '70000'], /--port must be an integer/],
  [['up', '--workers', '-1'], /--workers must be an integer/],
  [['up', '--job-ttl', 'soon'], /--job-ttl must be a number/],
  [['up', '--backend', 'ftp://x'], /must use http:\/\/ or https:\/\//],
  [['up', '--backend', 'not a url'], /is not a URL/],
  [['up', '--no-such-flag'], /unknown option '--no-such-flag'/],
] as const) {
  test(`sollol ${args.join(' ')} exits non-zero with one clear line`, () => {
    const result = runCli([...args]);
    assert.notEqual(result.status, 0);
    assert.match(result.stderr, pattern);
    assert.doesNotMatch(result.stderr, /listening on/);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
  });
}

test('a bad environment value is refused like a bad flag', () => {
  const result = runCli(['up'], { SOLLOL_MAX_JOBS: 'lots' });
  assert.equal(result.status, 2);
  assert.match(result.stderr, /^sollol: error: --max-jobs must be an integer from 1 to 1000000, got "lots"\n$/);
});

test('a port already in use is explained, not thrown', async (t) => {
  const node = await startSim(t);
  const result = runCli(['up', '--port', String(node.port), '--data-dir', tempDir(t)]);
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /already in use.*--port/);
});
