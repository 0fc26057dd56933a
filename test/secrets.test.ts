/**
 * Secrets in backend URLs (issue 7, part 5): `http://user:pass@node` (Basic auth) and
 * `openai+http://KEY@server` (a bearer key) never show in /api/stats, /metrics, any other
 * answer, error messages (item errors, sync API errors, config errors) or the logs, at any
 * level, of the gateway in-process and of `sollol up`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { ConfigError, resolveConfig } from '../src/config.js';
import { startGateway } from '../src/gateway.js';
import { startFakeOpenAI } from './fakes/openaiServer.js';
import { MODEL, call, docs, startSim, submit, tempDir, waitFor, waitForStatus } from './helpers.js';
import { spawnGateway } from './subprocess.js';

const OLLAMA_USER = 'alice-UNAME';
const OLLAMA_PASS = 's3cret@PASS';
const GOOD_KEY = 'sk-GOODKEY-1234567890';
const WRONG_KEY = 'sk-WRONGKEY-0987654321';
const DEAD_USER = 'bob-UNAME';
const DEAD_PASS = 'hunter2-PASS';

/** Every form a secret could leak in: as given, URL-encoded, and inside a Basic auth header. */
const SECRETS = [
  OLLAMA_USER, OLLAMA_PASS, encodeURIComponent(OLLAMA_PASS), GOOD_KEY, WRONG_KEY, DEAD_USER, DEAD_PASS,
  Buffer.from(`${OLLAMA_USER}:${OLLAMA_PASS}`).toString('base64'), Buffer.from(`${DEAD_USER}:${DEAD_PASS}`).toString('base64'),
];

function assertNoSecret(where: string, text: string): void {
  for (const secret of SECRETS) {
    const at = text.indexOf(secret);
    assert.equal(at, -1, `${where} shows the secret ${JSON.stringify(secret)}: ...${text.slice(Math.max(0, at - 150), at + 100)}...`);
  }
}

function withCredentials(url: string, user: string, pass: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(pass);
  return parsed.toString().replace(/\/$/, '');
}

test('credentials in backend URLs never appear in stats, metrics, answers, errors or logs', async (t) => {
  const node = await startSim(t, { dims: 8 });
  const good = await startFakeOpenAI(t, { models: { 'bge-m3': 8 }, apiKey: GOOD_KEY });
  // Accepts its key until the test changes it; then answers 401 quoting the key it was sent, as OpenAI does.
  const rotating = await startFakeOpenAI(t, { models: { 'e5-small': 8 }, apiKey: WRONG_KEY });
  const backends = [
    withCredentials(node.url, OLLAMA_USER, OLLAMA_PASS),
    `openai+${good.url.replace('//', `//:${GOOD_KEY}@`)}`,
    `openai+${rotating.url.replace('//', `//${WRONG_KEY}@`)}`,
    // Nothing listens on port 1: every probe fails with a connection error.
    `http://${DEAD_USER}:${DEAD_PASS}@127.0.0.1:1`,
  ];
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  const config = resolveConfig(
    { port: '0', backend: backends, dataDir: tempDir(t), chunkSize: '4', backendTimeout: '2', pendingTimeout: '2' },
    { SOLLOL_HEALTH_INTERVAL: '0.2', SOLLOL_SWEEP_INTERVAL: '0.2', SOLLOL_CHUNK_RETRIES: '1' },
  );
  const gateway = await startGateway(config, logger);
  t.after(() => gateway.stop());
  const base = gateway.url;
  const answers: [string, string][] = [];
  const get = async (path: string, init: Parameters<typeof call>[1] = {}): Promise<any> => {
    const answer = await call(base + path, init);
    answers.push([`${init.method ?? (init.body ? 'POST' : 'GET')} ${path} -> ${answer.status}`, typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body)]);
    return answer;
  };

  await waitFor(async () => {
    const models = (await get('/v1/models')).body.data.map((m: { id: string }) => m.id);
    return ['bge-m3:latest', 'e5-small:latest', `${MODEL}:latest`].every((m) => models.includes(m)) ? true : undefined;
  }, 'the three live backends healthy');

  // Work that succeeds through each live backend.
  const job = await get('/api/batch/embed', { body: { model: MODEL, documents: docs(10, 'secret test') } });
  await waitForStatus(base, job.body.job_id, ['completed']);
  await get(`/api/batch/results/${job.body.job_id}`);
  assert.equal((await get('/api/embed', { body: { model: MODEL, input: ['a', 'b'] } })).status, 200);
  assert.equal((await get('/v1/embeddings', { body: { model: 'bge-m3', input: 'hello' } })).status, 200);
  assert.equal((await get('/api/chat', { body: { model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: false } })).status, 200);

  // Failures whose messages name the backend: the node answering 500s, a server refusing the key (and quoting it).
  node.configure({ failureRate: 1 });
  const failedJob = await get('/api/batch/embed', { body: { model: MODEL, documents: docs(6, 'failing') } });
  await waitForStatus(base, failedJob.body.job_id, ['completed', 'failed']);
  const failedResults = await get(`/api/batch/results/${failedJob.body.job_id}`);
  assert.ok(failedResults.body.errors.length > 0, 'the node failures show as item errors');
  assert.ok((await get('/api/embed', { body: { model: MODEL, input: 'x' } })).status >= 500);
  node.configure({ failureRate: 0 });
  rotating.options = { ...rotating.options, apiKey: 'a-key-the-gateway-does-not-have' };
  const refusedJob = await get('/api/batch/embed', { body: { model: 'e5-small', documents: docs(3, 'refused') } });
  const refused = await waitFor(async () => {
    const status = (await get(`/api/batch/jobs/${refusedJob.body.job_id}`)).body;
    return ['completed', 'failed'].includes(status.status) ? status : undefined;
  }, 'the job on the server refusing the key to finish');
  assert.equal(refused.status, 'failed');
  await get(`/api/batch/results/${refusedJob.body.job_id}`);
  assert.ok(rotating.calls.some((c) => c.authorization === `Bearer ${WRONG_KEY}`), 'the key from the URL was sent');
  await get('/v1/embeddings', { body: { model: 'e5-small', input: 'y' } });
  // The refusing server is probed again and found unhealthy; its error lands in /api/stats.
  await waitFor(async () => {
    const stats = (await get('/api/stats')).body;
    const entry = stats.backends.find((b: { url: string }) => b.url.startsWith(rotating.url));
    return entry && !entry.healthy ? true : undefined;
  }, 'the refusing server marked unhealthy');

  for (const path of ['/api/stats', '/metrics', '/api/health', '/api/tags', '/api/ps', '/api/version', '/v1/models', '/openapi.json', '/api/batch/jobs?limit=1000']) {
    assert.equal((await get(path)).status, 200, path);
  }
  const stats = (await get('/api/stats')).body;
  assert.equal(stats.backends.length, 4);
  assert.ok(stats.backends.some((b: { url: string; healthy: boolean }) => b.url === 'http://127.0.0.1:1' && !b.healthy), JSON.stringify(stats.backends));
  await gateway.stop();

  for (const [what, text] of answers) assertNoSecret(what, text);
  assert.ok(lines.length > 10, 'the log was captured');
  lines.forEach((line, i) => assertNoSecret(`log line ${i}`, line));
  // The server's 401 (which quotes the key it was sent) reached the gateway and was reported, redacted.
  const everything = [...answers.map(([, text]) => text), ...lines].join('\n');
  assert.match(everything, /Incorrect API key provided: \*\*\*/, 'the refusal quoting the key was seen and redacted');
});

test('configuration errors and the `sollol up` log never show a backend credential', async (t) => {
  const cases: [string, string[]][] = [
    ['not http', [`ftp://${DEAD_USER}:${DEAD_PASS}@127.0.0.1:21`]],
    ['not a URL', [`http://${DEAD_USER}:${DEAD_PASS}@[not-a-host`]],
    ['given twice', [`http://${DEAD_USER}:${DEAD_PASS}@127.0.0.1:9`, `http://${DEAD_USER}:${DEAD_PASS}@127.0.0.1:9`]],
    ['openai not http', [`openai+ftp://${GOOD_KEY}@127.0.0.1:9`]],
  ];
  for (const [name, backend] of cases) {
    assert.throws(() => resolveConfig({ backend }, {}), (error: unknown) => {
      assert.ok(error instanceof ConfigError, name);
      assertNoSecret(`config error (${name})`, error.message);
      return true;
    });
  }

  // The CLI's own start-up and stop lines, at the most verbose level, with a live and a dead credentialed backend.
  const node = await startSim(t, { dims: 8 });
  const gateway = await spawnGateway(t, [
    '--backend', withCredentials(node.url, OLLAMA_USER, OLLAMA_PASS),
    '--backend', `http://${DEAD_USER}:${DEAD_PASS}@127.0.0.1:1`,
    '--data-dir', tempDir(t), '--log-level', 'trace',
  ]);
  const job = await submit(gateway.url, { model: MODEL, documents: docs(4, 'cli') });
  await waitForStatus(gateway.url, job.body.job_id, ['completed']);
  assert.equal(await gateway.stop(), 0);
  assert.match(gateway.log(), new RegExp(`backends: ${node.url.replace(/[.]/g, '\\.')}, http://127\\.0\\.0\\.1:1`));
  assertNoSecret('the sollol up log', gateway.log());

  // A bad --backend on the command line: one line on stderr, without the credential.
  const failed = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'up', '--port', '0', '--backend', `ftp://${DEAD_USER}:${DEAD_PASS}@h`]).then(
    () => assert.fail('sollol up accepted an ftp:// backend'),
    (error: { code: number; stderr: string }) => error,
  );
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /ftp/);
  assertNoSecret('the sollol up error', failed.stderr);
});
