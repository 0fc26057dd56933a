/**
 * API keys: every route but the public ones needs a key, answered 401 in each route family's
 * error shape; a job belongs to the key that made it and is invisible (404) to every other
 * key on every route; an admin key sees all; keys are compared in constant time, stored
 * hashed, and never appear in logs or messages.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { pino } from 'pino';
import { hashKey, parseKey, type ApiKey } from '../src/auth/keys.js';
import { constantTimeEqual, KeyRing } from '../src/auth/keyRing.js';
import { accessNotice, isLoopback } from '../src/auth/notice.js';
import { ConfigError, resolveConfig, type RawOptions } from '../src/config.js';
import { startGateway } from '../src/gateway.js';
import { MODEL, call, docs, startSim, startTestGateway, tempDir, waitFor } from './helpers.js';
import { spawnGateway } from './subprocess.js';

const KEY_A = 'alice-key-0123456789abcdef';
const KEY_B = 'bob-key-0123456789abcdef-xyz';
const ADMIN = 'admin-key-0123456789abcdef';

const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const xApiKey = (key: string): Record<string, string> => ({ 'x-api-key': key });

async function keyedGateway(t: Parameters<typeof startTestGateway>[0], flags: Parameters<typeof startTestGateway>[1] = {}) {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url], apiKey: [KEY_A, KEY_B], adminKey: [ADMIN], ...flags });
  return { node, ...gw };
}

test('a job is invisible to another key on every batch route; an admin key sees all', async (t) => {
  const { url } = await keyedGateway(t);
  const a = bearer(KEY_A);
  const b = bearer(KEY_B);
  const admin = bearer(ADMIN);

  const made = await call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(3) }, headers: a });
  assert.equal(made.status, 200);
  const id = made.body.job_id as string;
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${id}`, { headers: a })).body.status === 'completed' ? true : undefined), 'the job to complete');

  const notFound = (answer: { status: number; body: any }, what: string): void => {
    assert.equal(answer.status, 404, what);
    assert.equal(answer.body.code, 'JOB_NOT_FOUND', what);
    assert.equal(answer.body.detail, `Job ${id} not found`, what);
  };
  notFound(await call(`${url}/api/batch/jobs/${id}`, { headers: b }), 'status');
  notFound(await call(`${url}/api/batch/results/${id}`, { headers: b }), 'results');
  notFound(await call(`${url}/api/batch/results/${id}?partial=true&format=ndjson`, { headers: b }), 'partial results');
  // Not JOB_NOT_CANCELLABLE, which would tell that the job exists.
  notFound(await call(`${url}/api/batch/jobs/${id}`, { method: 'DELETE', headers: b }), 'cancel');
  notFound(await call(`${url}/api/batch/jobs/${id}/retry`, { method: 'POST', headers: b }), 'retry');
  notFound(await call(`${url}/api/batch/results/${id}`, { method: 'DELETE', headers: b }), 'results purge');
  assert.deepEqual((await call(`${url}/api/batch/jobs`, { headers: b })).body, { jobs: [], total: 0 });
  const bStats = (await call(`${url}/api/stats`, { headers: b })).body.batch_jobs;
  assert.equal(bStats.total_jobs_created, 0);
  assert.equal(bStats.total_jobs_completed, 0);
  assert.equal(bStats.stored_jobs, 0);

  // The owner sees it everywhere.
  assert.equal((await call(`${url}/api/batch/jobs/${id}`, { headers: a })).body.status, 'completed');
  assert.equal((await call(`${url}/api/batch/results/${id}`, { headers: a })).body.results.length, 3);
  assert.equal((await call(`${url}/api/batch/jobs/${id}`, { method: 'DELETE', headers: a })).body.code, 'JOB_NOT_CANCELLABLE');
  assert.deepEqual((await call(`${url}/api/batch/jobs`, { headers: a })).body.jobs.map((j: { job_id: string }) => j.job_id), [id]);
  const aStats = (await call(`${url}/api/stats`, { headers: a })).body.batch_jobs;
  assert.equal(aStats.total_jobs_created, 1);
  assert.equal(aStats.total_jobs_completed, 1);
  assert.equal(aStats.stored_jobs, 1);

  // B's own job; a retry of A's job belongs to A.
  const bJob = await call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(2, 'bee') }, headers: xApiKey(KEY_B) });
  assert.equal(bJob.status, 200);
  const retried = await call(`${url}/api/batch/jobs/${id}/retry`, { method: 'POST', headers: a });
  assert.equal(retried.status, 200);
  const foreignRetry = await call(`${url}/api/batch/jobs/${retried.body.job_id}`, { headers: b });
  assert.equal(foreignRetry.status, 404);
  assert.equal(foreignRetry.body.code, 'JOB_NOT_FOUND');
  assert.equal((await call(`${url}/api/batch/jobs/${retried.body.job_id}`, { headers: a })).status, 200);

  // The admin key sees every job, the global counters, and may act on any job.
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${bJob.body.job_id}`, { headers: admin })).body.status === 'completed' ? true : undefined), "B's job");
  const all = (await call(`${url}/api/batch/jobs`, { headers: admin })).body;
  assert.equal(all.total, 3);
  assert.deepEqual(new Set(all.jobs.map((j: { job_id: string }) => j.job_id)), new Set([id, bJob.body.job_id, retried.body.job_id]));
  assert.equal((await call(`${url}/api/batch/jobs/${id}`, { headers: admin })).status, 200);
  assert.equal((await call(`${url}/api/batch/results/${bJob.body.job_id}?partial=true`, { headers: admin })).status, 200);
  const global = (await call(`${url}/api/stats`, { headers: admin })).body.batch_jobs;
  assert.equal(global.total_jobs_created, 3);
  assert.equal(global.stored_jobs, 3);

  // An admin's own job belongs to the admin key: invisible to A.
  const adminJob = await call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(1, 'adm') }, headers: admin });
  assert.equal((await call(`${url}/api/batch/jobs/${adminJob.body.job_id}`, { headers: a })).status, 404);
  assert.equal((await call(`${url}/api/batch/jobs/${adminJob.body.job_id}`, { headers: admin })).status, 200);

  // Purge: the foreign key cannot, the owner can.
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${retried.body.job_id}`, { headers: a })).body.status === 'completed' ? true : undefined), 'the retry to finish');
  notFound(await call(`${url}/api/batch/results/${id}`, { method: 'DELETE', headers: b }), 'purge again');
  assert.equal((await call(`${url}/api/batch/results/${id}`, { method: 'DELETE', headers: a })).body.purged, true);
});

test('cancel of a running job by another key is 404 and leaves it running; its owner cancels it', async (t) => {
  const { url, node } = await keyedGateway(t);
  node.configure({ hang: true });
  t.after(() => node.configure({ hang: false }));
  const made = await call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(4) }, headers: bearer(KEY_A) });
  assert.equal(made.body.status, 'running');
  const id = made.body.job_id as string;
  const foreign = await call(`${url}/api/batch/jobs/${id}`, { method: 'DELETE', headers: bearer(KEY_B) });
  assert.equal(foreign.status, 404);
  assert.equal(foreign.body.code, 'JOB_NOT_FOUND');
  assert.equal((await call(`${url}/api/batch/jobs/${id}`, { headers: bearer(KEY_A) })).body.status, 'running');
  const own = await call(`${url}/api/batch/jobs/${id}`, { method: 'DELETE', headers: bearer(KEY_A) });
  assert.equal(own.body.cancelled, true);
});

test('401 in each family\'s shape: missing, wrong and malformed keys; both header styles accepted', async (t) => {
  const { url } = await keyedGateway(t);
  const batchRoutes: [string, string, unknown?][] = [
    ['GET', '/api/batch/jobs'],
    ['POST', '/api/batch/embed', { model: MODEL, documents: ['a'] }],
    ['GET', '/api/batch/jobs/00000000-0000-4000-8000-000000000000'],
    ['GET', '/api/stats'],
    ['GET', '/api/no-such-route'],
  ];
  for (const [method, route, body] of batchRoutes) {
    for (const headers of [{}, bearer('wrong-key-0123456789abcdef'), xApiKey('wrong-key-0123456789abcdef'), { authorization: `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}` }, { authorization: 'Bearer' }]) {
      const answer = await call(`${url}${route}`, { method, headers, ...(body === undefined ? {} : { body }) });
      assert.equal(answer.status, 401, `${method} ${route} ${JSON.stringify(headers)}`);
      assert.deepEqual(Object.keys(answer.body).sort(), ['code', 'detail']);
      assert.equal(answer.body.code, 'UNAUTHORIZED');
      assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer realm="sollol"/);
      assert.ok(answer.headers.get('x-sollol-version'), 'every response carries the version header');
    }
  }
  const missing = await call(`${url}/api/batch/jobs`);
  assert.match(missing.body.detail, /Authorization: Bearer <key>.*X-API-Key: <key>/);
  const wrong = await call(`${url}/api/batch/jobs`, { headers: bearer('wrong-key-0123456789abcdef') });
  assert.equal(wrong.body.detail, 'The API key is not valid');
  assert.doesNotMatch(JSON.stringify(wrong.body), /wrong-key/, 'the presented key is not echoed');

  // Ollama-compatible routes: {error, code}.
  for (const [method, route, body] of [['POST', '/api/embed', { model: MODEL, input: 'x' }], ['POST', '/api/embeddings', { model: MODEL, prompt: 'x' }], ['GET', '/api/tags'], ['GET', '/api/ps'], ['POST', '/api/chat', { model: MODEL, messages: [] }]] as const) {
    const answer = await call(`${url}${route}`, { method, ...(body === undefined ? {} : { body }) });
    assert.equal(answer.status, 401, route);
    assert.deepEqual(answer.body, { error: answer.body.error, code: 'UNAUTHORIZED' }, route);
    assert.equal(typeof answer.body.error, 'string');
  }
  // OpenAI-compatible routes: {error: {message, type, param, code}}, unknown /v1 routes included.
  for (const [method, route, body] of [['POST', '/v1/embeddings', { model: MODEL, input: 'x' }], ['GET', '/v1/models'], ['GET', '/v1/models/x'], ['GET', '/v1/nope']] as const) {
    const answer = await call(`${url}${route}`, { method, headers: bearer('wrong-key-0123456789abcdef'), ...(body === undefined ? {} : { body }) });
    assert.equal(answer.status, 401, route);
    assert.deepEqual(answer.body, { error: { message: 'The API key is not valid', type: 'invalid_request_error', param: null, code: 'UNAUTHORIZED' } }, route);
  }

  // Both header styles, any case of the scheme, and the public routes without a key.
  assert.equal((await call(`${url}/api/batch/jobs`, { headers: bearer(KEY_A) })).status, 200);
  assert.equal((await call(`${url}/api/batch/jobs`, { headers: { authorization: `bearer ${KEY_A}` } })).status, 200);
  assert.equal((await call(`${url}/api/batch/jobs`, { headers: xApiKey(KEY_B) })).status, 200);
  const health = await call(`${url}/api/health`);
  assert.equal(health.status, 200);
  assert.equal(health.body.status, 'ok');
  assert.equal((await call(`${url}/api/version`)).status, 200);
  const openapi = await call(`${url}/openapi.json`);
  assert.equal(openapi.status, 200);
  assert.ok(openapi.body.components.securitySchemes.bearer, 'the API description names the key schemes');
  assert.ok((await fetch(`${url}/docs`)).status < 400);

  // /metrics holds figures across every key: admin only.
  assert.equal((await call(`${url}/metrics`)).status, 401);
  const forbidden = await call(`${url}/metrics`, { headers: bearer(KEY_A) });
  assert.equal(forbidden.status, 403);
  assert.equal(forbidden.body.code, 'FORBIDDEN');
  assert.equal((await call(`${url}/metrics`, { headers: bearer(ADMIN) })).status, 200);
});

test('the sync APIs take a key: the ollama and openai clients with their own auth options', async (t) => {
  const { url } = await keyedGateway(t);
  const ollama = new Ollama({ host: url, headers: { Authorization: `Bearer ${KEY_A}` } });
  assert.equal((await ollama.embed({ model: MODEL, input: ['one', 'two'] })).embeddings.length, 2);
  const direct = await call(`${url}/api/embed`, { body: { model: MODEL, input: 'x' }, headers: xApiKey(KEY_B) });
  assert.equal(direct.status, 200);
  const anonymous = new Ollama({ host: url });
  await assert.rejects(anonymous.embed({ model: MODEL, input: 'x' }), (error: { status_code?: number }) => error.status_code === 401);

  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY_B, maxRetries: 0 });
  const embedded = await openai.embeddings.create({ model: MODEL, input: ['one', 'two', 'three'] });
  assert.equal(embedded.data.length, 3);
  const wrong = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'not-a-key-0123456789abcdef', maxRetries: 0 });
  await assert.rejects(wrong.embeddings.create({ model: MODEL, input: 'x' }), (error: unknown) => {
    assert.ok(error instanceof OpenAI.AuthenticationError);
    assert.equal(error.status, 401);
    assert.equal(error.code, 'UNAUTHORIZED');
    return true;
  });
});

test('a keys file: hashed and plain keys, names (shared by keys of one owner), admin flag, comments', async (t) => {
  const node = await startSim(t);
  const dir = tempDir(t);
  const file = path.join(dir, 'keys.txt');
  const rotated = 'alice-new-key-0123456789abcdef';
  fs.writeFileSync(
    file,
    [
      '# sollol API keys',
      '',
      `${hashKey(KEY_A)}  name=alice`,
      `${rotated} name=alice`,
      `  ${hashKey(ADMIN).toUpperCase().replace('SHA256:', 'sha256:')}\tname=ops admin  `,
      `${hashKey(KEY_B)}`,
    ].join('\n'),
  );
  const { url } = await startTestGateway(t, { backend: [node.url], apiKeysFile: file });
  const made = await call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(2) }, headers: bearer(KEY_A) });
  assert.equal(made.status, 200);
  // The other key named alice sees alice's job; bob (no name) does not; ops is admin.
  assert.equal((await call(`${url}/api/batch/jobs/${made.body.job_id}`, { headers: bearer(rotated) })).status, 200);
  assert.equal((await call(`${url}/api/batch/jobs/${made.body.job_id}`, { headers: bearer(KEY_B) })).status, 404);
  assert.equal((await call(`${url}/api/batch/jobs/${made.body.job_id}`, { headers: bearer(ADMIN) })).status, 200);
  assert.equal((await call(`${url}/metrics`, { headers: bearer(ADMIN) })).status, 200);
  // The hash itself is not a key.
  assert.equal((await call(`${url}/api/batch/jobs`, { headers: bearer(hashKey(KEY_A)) })).status, 401);
});

test('keys from the environment: SOLLOL_API_KEYS and SOLLOL_ADMIN_KEYS, comma lists', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] }, { SOLLOL_API_KEYS: `${KEY_A}, ${KEY_B}`, SOLLOL_ADMIN_KEYS: ADMIN });
  assert.equal((await call(`${url}/api/batch/jobs`)).status, 401);
  assert.equal((await call(`${url}/api/batch/jobs`, { headers: bearer(KEY_B) })).status, 200);
  assert.equal((await call(`${url}/metrics`, { headers: bearer(ADMIN) })).status, 200);
});

test('keys never reach the logs, and config messages never quote them', async (t) => {
  const node = await startSim(t);
  let logged = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged += chunk.toString();
      done();
    },
  });
  const logger = pino({ level: 'trace' }, sink);
  const config = resolveConfig({ port: '0', backend: [node.url], apiKey: [KEY_A], adminKey: [ADMIN], dataDir: tempDir(t) }, { SOLLOL_HEALTH_INTERVAL: '0.2' });
  const gateway = await startGateway(config, logger);
  t.after(() => gateway.stop());
  const url = gateway.url;
  const wrongKey = 'guessed-key-0123456789abcdef';
  logger.info(accessNotice(config, url).message);
  const made = await call(`${url}/api/batch/embed`, { body: { model: MODEL, documents: docs(2) }, headers: bearer(KEY_A) });
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${made.body.job_id}`, { headers: bearer(KEY_A) })).body.status === 'completed' ? true : undefined), 'the job');
  await call(`${url}/api/batch/jobs?key=${wrongKey}`, { headers: bearer(wrongKey) });
  await call(`${url}/api/batch/jobs`, { headers: xApiKey(wrongKey) });
  await call(`${url}/api/embed`, { body: { model: 'no-such-model', input: 'x' }, headers: bearer(KEY_A) });
  await call(`${url}/v1/embeddings`, { body: { model: MODEL, input: 'x' }, headers: bearer(ADMIN) });
  await call(`${url}/api/batch/results/${made.body.job_id}`, { headers: bearer(ADMIN) });
  await gateway.stop();
  assert.match(logged, /request refused: invalid API key/, 'the refusal itself is logged');
  assert.match(logged, /job submitted/);
  for (const secret of [KEY_A, ADMIN, wrongKey, sha256Hex(KEY_A), sha256Hex(ADMIN)]) {
    assert.ok(!logged.includes(secret), 'a key (or its full hash) is in the log');
  }
  assert.ok(!JSON.stringify(config).includes(KEY_A), 'the config holds no plain key');

  for (const [flags, env] of [
    [{ apiKey: ['short-secret'] }, {}],
    [{ apiKey: ['has a space in it, and long enough'] }, {}],
    [{}, { SOLLOL_ADMIN_KEYS: 'tiny-secret' }],
  ] as [RawOptions, Record<string, string>][]) {
    assert.throws(() => resolveConfig(flags, env), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.doesNotMatch(error.message, /secret|space in it/);
      return true;
    });
  }
});

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

test('constant-time key match: the right key only, every configured key compared, lengths never throw', () => {
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc')), true);
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')), false);
  assert.equal(constantTimeEqual(Buffer.from('abc'), Buffer.from('abcd')), false, 'different lengths are unequal, not an exception');
  assert.equal(constantTimeEqual(Buffer.alloc(0), Buffer.alloc(0)), true);

  let reads = 0;
  const counted = (key: ApiKey): ApiKey => ({
    owner: key.owner,
    admin: key.admin,
    source: key.source,
    get hash() {
      reads++;
      return key.hash;
    },
  });
  const keys = [KEY_A, KEY_B, ADMIN].map((k, i) => counted(parseKey(k, { admin: i === 2, source: `#${i}` })));
  const ring = new KeyRing(keys);
  assert.equal(ring.match(KEY_A)?.owner, keys[0]!.owner);
  assert.equal(reads, 3, 'a match on the first key still compares every key');
  reads = 0;
  assert.equal(ring.match(ADMIN)?.admin, true);
  assert.equal(ring.match('nobody-0123456789abcdef'), undefined);
  assert.equal(reads, 6);
  for (const near of [KEY_A.slice(0, -1), `${KEY_A}x`, KEY_A.toUpperCase(), ` ${KEY_A}`, '', hashKey(KEY_A)]) {
    assert.equal(ring.match(near), undefined, JSON.stringify(near));
  }
});

test('key parsing: hashed and plain forms, owner ids, and one-line errors', () => {
  const plain = parseKey(KEY_A, { admin: false, source: '--api-key #1' });
  const hashed = parseKey(hashKey(KEY_A), { admin: true, source: '--admin-key #1' });
  assert.deepEqual(plain.hash, hashed.hash, 'a key and its sha256 form are the same key');
  assert.equal(plain.owner, `key-${sha256Hex(KEY_A).slice(0, 12)}`);
  assert.equal(hashed.owner, plain.owner, 'the owner id is stable whichever form configured the key');
  assert.ok(!plain.owner.includes(KEY_A));

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-keys-'));
  try {
    const write = (text: string): string => {
      const file = path.join(dir, `k${Math.random()}.txt`);
      fs.writeFileSync(file, text);
      return file;
    };
    const cases: [Parameters<typeof resolveConfig>[0], RegExp][] = [
      [{ apiKeysFile: path.join(dir, 'missing.txt') }, /--api-keys-file .*missing\.txt: cannot read it \(ENOENT\)/],
      [{ apiKeysFile: write('# nothing\n\n') }, /holds no key/],
      [{ apiKeysFile: write(`${KEY_A} nmae=x\n`) }, /line 1: unknown field "nmae=x"/],
      [{ apiKeysFile: write(`${KEY_A} name=key-1\n`) }, /reserved/],
      [{ apiKeysFile: write(`${KEY_A} name=\n`) }, /name must be/],
      [{ apiKeysFile: write(`# a\n${KEY_A}\n${hashKey(KEY_A)} name=x\n`) }, /line 3: the same key as .* line 2/],
      [{ apiKey: [KEY_A], adminKey: [KEY_A] }, /--admin-key #1: the same key as --api-key #1/],
      [{ apiKey: ['sha256:abcd'] }, /--api-key #1: a key must be at least 16 characters/],
    ];
    for (const [flags, pattern] of cases) {
      assert.throws(() => resolveConfig(flags, {}), (error: unknown) => error instanceof ConfigError && pattern.test(error.message) && !error.message.includes('\n'));
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(resolveConfig({}, {}).apiKeys, [], 'no keys by default');
});

test('start-up notice: open on loopback warns once; open on another address warns loudly; keys are summarised without the keys', () => {
  for (const host of ['127.0.0.1', 'localhost', '::1', '127.0.0.2']) assert.equal(isLoopback(host), true, host);
  for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2']) assert.equal(isLoopback(host), false, host);

  const local = accessNotice({ host: '127.0.0.1', apiKeys: [] }, 'http://127.0.0.1:11434');
  assert.equal(local.level, 'warn');
  assert.equal(local.loud, false);
  assert.match(local.message, /no API keys configured: the gateway is open .*loopback only.*--api-key/);

  for (const host of ['0.0.0.0', '::', '10.1.2.3']) {
    const open = accessNotice({ host, apiKeys: [] }, `http://${host}:11434`);
    assert.equal(open.level, 'warn');
    assert.equal(open.loud, true, host);
    assert.match(open.message, /^SECURITY WARNING: NO API KEYS CONFIGURED and listening on .*anyone who can reach this address/);
  }

  const keys = [parseKey(KEY_A, { admin: false, source: 'a' }), parseKey(ADMIN, { admin: true, source: 'b', name: 'ops' })];
  const keyed = accessNotice({ host: '0.0.0.0', apiKeys: keys }, 'http://0.0.0.0:11434');
  assert.equal(keyed.level, 'info');
  assert.match(keyed.message, /API keys: 2 \(1 admin; owners: key-[0-9a-f]{12}, ops\)/);
  assert.ok(!keyed.message.includes(KEY_A) && !keyed.message.includes(ADMIN));
});

test('sollol up says at start-up whether it is open or keyed (subprocess), and sollol hash-key hashes a key', async (t) => {
  const node = await startSim(t);
  const open = await spawnGateway(t, ['--backend', node.url, '--data-dir', tempDir(t)]);
  await waitFor(() => (/no API keys configured/.test(open.log()) ? true : undefined), 'the open warning');
  assert.equal((open.log().match(/no API keys configured/g) ?? []).length, 1, 'one warn line');
  await open.stop();

  const keyed = await spawnGateway(t, ['--backend', node.url, '--data-dir', tempDir(t), '--api-key', KEY_A]);
  await waitFor(() => (/API keys: 1 \(0 admin/.test(keyed.log()) ? true : undefined), 'the keys line');
  assert.equal((await call(`${keyed.url}/api/batch/jobs`)).status, 401);
  assert.equal((await call(`${keyed.url}/api/batch/jobs`, { headers: bearer(KEY_A) })).status, 200);
  await keyed.stop();
  assert.ok(!keyed.log().includes(KEY_A), 'the key is not printed');
  assert.doesNotMatch(keyed.log(), /no API keys configured/);

  const cli = ['--import', 'tsx', 'src/cli/main.ts', 'hash-key'];
  const hashed = spawnSync(process.execPath, [...cli, '--name', 'alice', '--admin'], { input: `${KEY_A}\n`, encoding: 'utf8', timeout: 20_000 });
  assert.equal(hashed.status, 0, hashed.stderr);
  assert.equal(hashed.stdout, `sha256:${sha256Hex(KEY_A)} name=alice admin\n`);
  const generated = spawnSync(process.execPath, [...cli, '--generate'], { encoding: 'utf8', timeout: 20_000 });
  const [, key, line] = /^key: {2}(\S+)\nline: (\S+)\n$/.exec(generated.stdout) ?? [];
  assert.ok(key && key.length >= 32, generated.stdout);
  assert.equal(line, hashKey(key));
  const short = spawnSync(process.execPath, [...cli, 'short'], { encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(short.status, 0);
  assert.match(short.stderr, /^sollol: error: the key: a key must be at least 16 characters/);
  assert.ok(!short.stderr.includes('short\n'));
});
