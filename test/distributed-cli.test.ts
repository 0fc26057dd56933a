/** Flags of the distributed mode: `--redis`, `--redis-prefix`, and `sollol worker`'s refusals. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ConfigError, resolveConfig } from '../src/config.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

function runCli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [...CLI, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, SOLLOL_REDIS_URL: '', ...env } });
}

test('--redis and --redis-prefix: flags win over SOLLOL_REDIS_URL / SOLLOL_REDIS_PREFIX, defaults embedded and {sollol}: (a Cluster hash tag)', () => {
  assert.equal(resolveConfig({}, {}).redisUrl, undefined);
  assert.equal(resolveConfig({}, {}).redisPrefix, '{sollol}:');
  const fromEnv = resolveConfig({}, { SOLLOL_REDIS_URL: 'redis://h:6379', SOLLOL_REDIS_PREFIX: 'team-a:' });
  assert.equal(fromEnv.redisUrl, 'redis://h:6379');
  assert.equal(fromEnv.redisPrefix, 'team-a:');
  const fromFlags = resolveConfig({ redis: 'rediss://u:p@h:6380/2', redisPrefix: 'b:' }, { SOLLOL_REDIS_URL: 'redis://h:6379' });
  assert.equal(fromFlags.redisUrl, 'rediss://u:p@h:6380/2');
  assert.equal(fromFlags.redisPrefix, 'b:');
  assert.equal(resolveConfig({}, { SOLLOL_CHUNK_LOCK: '3' }).chunkLockMs, 3000);
});

test('a bad --redis or --redis-prefix is one clear ConfigError, never echoing a password', () => {
  assert.throws(() => resolveConfig({ redis: 'http://h:6379' }, {}), (e: unknown) => e instanceof ConfigError && /redis:\/\/ or rediss:\/\//.test(e.message));
  assert.throws(() => resolveConfig({ redis: 'not a url' }, {}), (e: unknown) => e instanceof ConfigError && /--redis must be a URL/.test(e.message));
  assert.throws(
    () => resolveConfig({ redis: 'http://user:secret@h:6379' }, {}),
    (e: unknown) => e instanceof ConfigError && !e.message.includes('secret'),
  );
  assert.throws(() => resolveConfig({ redisPrefix: '' }, {}), ConfigError);
  assert.throws(() => resolveConfig({ redisPrefix: 'a b' }, {}), ConfigError);
  assert.throws(() => resolveConfig({ redisPrefix: 'a*' }, {}), ConfigError);
});

test('sollol worker refuses to start without --redis, or with --workers 0, in one line', () => {
  const none = runCli(['worker', '--backend', 'http://127.0.0.1:9']);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /^sollol: error: sollol worker needs --redis/);
  assert.equal(none.stderr.trim().split('\n').length, 1);
  const idle = runCli(['worker', '--redis', 'redis://127.0.0.1:9', '--workers', '0']);
  assert.equal(idle.status, 2);
  assert.match(idle.stderr, /--workers 0/);
  const bad = runCli(['up', '--redis', 'http://127.0.0.1:6379']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /must use redis:\/\/ or rediss:\/\//);
});

test('sollol --help lists the worker command; sollol up --help shows --redis and --redis-prefix', () => {
  assert.match(runCli(['--help']).stdout, /worker/);
  const up = runCli(['up', '--help']).stdout;
  assert.match(up, /--redis <url>/);
  assert.match(up, /--redis-prefix <prefix>/);
});
