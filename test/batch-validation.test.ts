/** Every validation rule of POST /api/batch/embed and the error shape of the gateway routes. */
import assert from 'node:assert/strict';
import { before, after, describe, test } from 'node:test';
import { VERSION } from '../src/version.js';
import { MODEL, call, startSim, startTestGateway, submit } from './helpers.js';

describe('batch submit validation', () => {
  let url = '';
  const cleanups: (() => Promise<void>)[] = [];

  before(async () => {
    const t = { after: (fn: () => Promise<void>) => cleanups.push(fn) } as never;
    const node = await startSim(t);
    ({ url } = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '20', bodyLimitMb: '1' }));
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  const cases: [string, { body?: unknown; raw?: string }, number, string, RegExp?][] = [
    ['body not JSON', { raw: '{"model": ' }, 400, 'INVALID_JSON'],
    ['empty body', { raw: '' }, 400, 'INVALID_JSON'],
    ['body an array', { body: [1, 2] }, 400, 'INVALID_BODY'],
    ['body a string', { body: 'hello' }, 400, 'INVALID_BODY'],
    ['model missing', { body: { documents: ['a'] } }, 400, 'INVALID_MODEL', /model/],
    ['model not a string', { body: { model: 5, documents: ['a'] } }, 400, 'INVALID_MODEL'],
    ['model empty', { body: { model: '', documents: ['a'] } }, 400, 'INVALID_MODEL'],
    ['model too long', { body: { model: 'm'.repeat(201), documents: ['a'] } }, 400, 'INVALID_MODEL'],
    ['documents missing', { body: { model: MODEL } }, 400, 'NO_DOCUMENTS', /^No documents provided$/],
    ['documents empty', { body: { model: MODEL, documents: [] } }, 400, 'NO_DOCUMENTS', /^No documents provided$/],
    ['documents not an array', { body: { model: MODEL, documents: 'abc' } }, 400, 'INVALID_BODY', /documents/],
    ['too many documents', { body: { model: MODEL, documents: Array(25).fill('x') } }, 400, 'BATCH_TOO_LARGE', /^Maximum 20 documents per batch\. Got 25\.$/],
    ['a number as document', { body: { model: MODEL, documents: ['a', 'b', 7] } }, 400, 'INVALID_DOCUMENT', /documents\[2\]/],
    ['an empty document', { body: { model: MODEL, documents: ['a', ''] } }, 400, 'INVALID_DOCUMENT', /documents\[1\]/],
    ['a null document', { body: { model: MODEL, documents: [null] } }, 400, 'INVALID_DOCUMENT', /documents\[0\]/],
    ['metadata an array', { body: { model: MODEL, documents: ['a'], metadata: [1] } }, 400, 'INVALID_METADATA'],
    ['metadata a string', { body: { model: MODEL, documents: ['a'], metadata: 'x' } }, 400, 'INVALID_METADATA'],
    ['metadata over 16 KiB', { body: { model: MODEL, documents: ['a'], metadata: { blob: 'x'.repeat(17 * 1024) } } }, 400, 'INVALID_METADATA', /16 KiB/],
    ['unknown option', { body: { model: MODEL, documents: ['a'], options: { temperature: 1 } } }, 400, 'INVALID_OPTIONS', /temperature/],
    ['bad dimensions', { body: { model: MODEL, documents: ['a'], options: { dimensions: 0 } } }, 400, 'INVALID_OPTIONS', /dimensions/],
    ['truncate not boolean', { body: { model: MODEL, documents: ['a'], options: { truncate: 'yes' } } }, 400, 'INVALID_OPTIONS', /truncate/],
    ['unknown top-level field', { body: { model: MODEL, documents: ['a'], colour: 5 } }, 400, 'INVALID_BODY', /colour/],
    ['unknown model', { body: { model: 'no-such-model', documents: ['a'] } }, 400, 'MODEL_NOT_FOUND', /nomic-embed-text/],
    ['body over the limit', { body: { model: MODEL, documents: ['x'.repeat(600_000), 'y'.repeat(600_000)] } }, 413, 'BODY_TOO_LARGE'],
  ];

  for (const [name, input, status, code, detail] of cases) {
    test(`${name} -> ${status} ${code}`, async () => {
      const answer = input.raw !== undefined ? await call(`${url}/api/batch/embed`, { rawBody: input.raw }) : await submit(url, input.body);
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.equal(answer.body.code, code);
      assert.equal(typeof answer.body.detail, 'string');
      assert.deepEqual(Object.keys(answer.body).sort(), ['code', 'detail']);
      if (detail) assert.match(answer.body.detail, detail);
    });
  }

  test('a body without a JSON content type is still read as JSON', async () => {
    const answer = await call(`${url}/api/batch/embed`, { rawBody: JSON.stringify({ model: MODEL, documents: ['a'] }), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(answer.status, 200);
    assert.equal(answer.body.status, 'running');
  });

  test('a model name without tag matches name:latest, and options are accepted', async () => {
    const answer = await submit(url, { model: `${MODEL}:latest`, documents: ['a'], options: { truncate: false, dimensions: 256, keep_alive: '5m' } });
    assert.equal(answer.status, 200);
  });

  test('every response carries X-SOLLOL-Version, errors included', async () => {
    for (const path of ['/api/health', '/api/batch/jobs/nope', '/no/such/route']) {
      const answer = await call(`${url}${path}`);
      assert.equal(answer.headers.get('x-sollol-version'), VERSION, path);
    }
  });

  test('unknown routes answer 404 NOT_FOUND in {detail, code}', async () => {
    const answer = await call(`${url}/api/batch/nothing`);
    assert.equal(answer.status, 404);
    assert.equal(answer.body.code, 'NOT_FOUND');
  });

  test('unknown, malformed and expired ids answer 404 JOB_NOT_FOUND on every job route', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', '%20']) {
      for (const [method, path] of [['GET', 'jobs'], ['DELETE', 'jobs'], ['GET', 'results']] as const) {
        const answer = await call(`${url}/api/batch/${path}/${id}`, { method });
        assert.equal(answer.status, 404, `${method} ${path}/${id}`);
        assert.equal(answer.body.code, 'JOB_NOT_FOUND');
        assert.equal(answer.body.detail, `Job ${decodeURIComponent(id)} not found`);
      }
    }
  });

  test('list: limit must be an integer from 1 to 1000, status must be a state', async () => {
    for (const bad of ['0', '1001', 'abc', '2.5', '-1']) {
      const answer = await call(`${url}/api/batch/jobs?limit=${bad}`);
      assert.equal(answer.status, 400, bad);
      assert.equal(answer.body.code, 'INVALID_LIMIT');
    }
    const status = await call(`${url}/api/batch/jobs?status=done`);
    assert.equal(status.status, 400);
    assert.equal(status.body.code, 'INVALID_QUERY');
  });

  test('health answers ok with service and version; OpenAPI and docs are served', async () => {
    const health = await call(`${url}/api/health`);
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.service, 'sollol');
    assert.equal(health.body.version, VERSION);
    const openapi = await call(`${url}/openapi.json`);
    assert.equal(openapi.status, 200);
    assert.ok(openapi.body.paths['/api/batch/embed'].post.requestBody, 'submit body schema in OpenAPI');
    assert.ok(openapi.body.paths['/api/batch/jobs/{job_id}']);
    const docs = await fetch(`${url}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger/i);
  });
});

test('--no-batch-processing: every batch route answers 503 BATCH_DISABLED, the rest keeps working', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], batchProcessing: false });
  for (const [method, path] of [['POST', '/api/batch/embed'], ['GET', '/api/batch/jobs'], ['GET', '/api/batch/jobs/x'], ['DELETE', '/api/batch/jobs/x'], ['GET', '/api/batch/results/x']] as const) {
    const answer = await call(`${url}${path}`, method === 'POST' ? { body: { model: MODEL, documents: ['a'] } } : { method });
    assert.equal(answer.status, 503, `${method} ${path}`);
    assert.equal(answer.body.code, 'BATCH_DISABLED');
    assert.equal(answer.body.detail, 'Batch processing disabled. Start gateway with --batch-processing');
  }
  assert.equal((await call(`${url}/api/health`)).status, 200);
  assert.equal((await call(`${url}/api/stats`)).body.batch_jobs.batch_processing, false);
});

test('SOLLOL_BATCH_PROCESSING=false disables the batch routes too', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] }, { SOLLOL_BATCH_PROCESSING: 'false' });
  assert.equal((await call(`${url}/api/batch/jobs`)).status, 503);
});
