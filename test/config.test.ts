/** Flags win over environment, environment over defaults; bad values throw one-line ConfigErrors. */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { ConfigError, DEFAULTS, resolveConfig } from '../src/config.js';

test('defaults: loopback on 11434, the embedded backend, auto workers, DESIGN.md limits', () => {
  const config = resolveConfig({}, {});
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.port, 11434);
  assert.deepEqual(config.backends, [{ kind: 'embedded' }]);
  assert.equal(config.workers, 1, 'auto = the embedded threads when only the embedded model is configured');
  assert.equal(config.jobTtlMs, 3_600_000);
  assert.equal(config.maxJobs, 1000);
  assert.equal(config.maxBatchDocuments, 10_000);
  assert.equal(config.pendingTimeoutMs, 600_000);
  assert.equal(config.batchProcessing, true);
  assert.equal(config.dataDir, path.resolve(DEFAULTS.dataDir));
  assert.ok(config.bodyLimitBytes >= 10_000 * 8 * 1024, 'the body limit admits 10,000 documents of 8 KiB');
  assert.ok(Object.isFrozen(config));
});

test('auto workers: 2 per remote node plus the embedded threads', () => {
  const config = resolveConfig({ backend: ['http://a:11434', 'http://b:11434', 'embedded'], embeddedThreads: '2' }, {});
  assert.equal(config.workers, 6);
});

test('flags win over environment, environment over defaults; --dask-workers is an alias', () => {
  const env = { SOLLOL_PORT: '9000', SOLLOL_WORKERS: '3', SOLLOL_BACKENDS: 'http://x:1, http://y:2', SOLLOL_JOB_TTL: '60' };
  const fromEnv = resolveConfig({}, env);
  assert.equal(fromEnv.port, 9000);
  assert.equal(fromEnv.workers, 3);
  assert.deepEqual(fromEnv.backends, [{ kind: 'ollama', url: 'http://x:1' }, { kind: 'ollama', url: 'http://y:2' }]);
  assert.equal(fromEnv.jobTtlMs, 60_000);
  const fromFlags = resolveConfig({ port: '9100', daskWorkers: '5' }, env);
  assert.equal(fromFlags.port, 9100);
  assert.equal(fromFlags.workers, 5);
  assert.equal(resolveConfig({}, { SOLLOL_DASK_WORKERS: '4' }).workers, 4);
  assert.equal(resolveConfig({ batchProcessing: true }, { SOLLOL_BATCH_PROCESSING: 'false' }).batchProcessing, true);
  assert.equal(resolveConfig({}, { SOLLOL_BATCH_PROCESSING: 'false' }).batchProcessing, false);
});

test('backend URLs: ollama by default, openai+ prefix, embedded, duplicates refused', () => {
  assert.deepEqual(resolveConfig({ backend: ['openai+http://h:8080/', 'embedded'] }, {}).backends, [
    { kind: 'openai', url: 'http://h:8080' },
    { kind: 'embedded' },
  ]);
  assert.throws(() => resolveConfig({ backend: ['http://h:1', 'http://h:1/'] }, {}), /given twice/);
});

test('bad values throw ConfigError naming the flag and the value', () => {
  const bad: [Record<string, unknown>, Record<string, string>, RegExp][] = [
    [{ port: '-1' }, {}, /--port/],
    [{ workers: 'many' }, {}, /--workers/],
    [{ maxJobs: '0' }, {}, /--max-jobs/],
    [{ jobTtl: '-5' }, {}, /--job-ttl/],
    [{}, { SOLLOL_BATCH_PROCESSING: 'maybe' }, /SOLLOL_BATCH_PROCESSING/],
    [{ host: '' }, {}, /--host/],
    [{ embeddedThreads: '0' }, {}, /--embedded-threads/],
  ];
  for (const [flags, env, pattern] of bad) {
    assert.throws(() => resolveConfig(flags, env), (error: unknown) => error instanceof ConfigError && pattern.test(error.message) && !error.message.includes('\n'));
  }
});

test('credentials in backend URLs never appear in messages', () => {
  assert.throws(() => resolveConfig({ backend: ['openai+http://sk-secret@h:1', 'openai+http://sk-secret@h:1'] }, {}), (error: unknown) => error instanceof ConfigError && !error.message.includes('sk-secret'));
  assert.throws(() => resolveConfig({ backend: ['ftp://user:pw@h'] }, {}), (error: unknown) => error instanceof ConfigError && !error.message.includes('pw'));
});
