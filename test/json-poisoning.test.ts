/**
 * Issue 10 item 9: bodies are parsed with secure-json-parse, whatever the Content-Type: a
 * `__proto__` or `constructor.prototype` key (top level or nested) is refused with 400
 * INVALID_JSON in each route family's error shape, and no job is created for it.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, call, startSim, startTestGateway } from './helpers.js';

const POISONS: [string, (fields: string) => string][] = [
  ['__proto__ at the top level', (fields) => `{${fields}, "__proto__": {"polluted": true}}`],
  ['constructor.prototype at the top level', (fields) => `{${fields}, "constructor": {"prototype": {"polluted": true}}}`],
  ['__proto__ nested in metadata/options', (fields) => `{${fields}, "options": {"__proto__": {"truncate": false}}}`],
  ['constructor.prototype nested', (fields) => `{${fields}, "metadata": {"constructor": {"prototype": {"polluted": true}}}}`],
];

const ROUTES: [string, string, (body: any) => string | undefined][] = [
  ['/api/batch/embed', `"model": "${MODEL}", "documents": ["a", "b"]`, (body) => body.code],
  ['/api/embed', `"model": "${MODEL}", "input": ["a", "b"]`, (body) => body.code],
  ['/api/embeddings', `"model": "${MODEL}", "prompt": "a"`, (body) => body.code],
  ['/v1/embeddings', `"model": "${MODEL}", "input": ["a", "b"]`, (body) => body.error?.code],
];

test('__proto__ and constructor.prototype keys are refused with 400 INVALID_JSON on the batch, Ollama and OpenAI routes', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  for (const [route, fields, codeOf] of ROUTES) {
    // The same body without the poisoned key is accepted: the refusal is the key's doing.
    const clean = await call(`${url}${route}`, { rawBody: `{${fields}}` });
    assert.equal(clean.status, 200, `${route} clean: ${JSON.stringify(clean.body)}`);
    for (const [what, make] of POISONS) {
      for (const contentType of ['application/json', 'application/x-www-form-urlencoded']) {
        const answer = await call(`${url}${route}`, { rawBody: make(fields), headers: { 'content-type': contentType } });
        const label = `${route} ${what} (${contentType})`;
        assert.equal(answer.status, 400, `${label}: ${JSON.stringify(answer.body)}`);
        assert.equal(codeOf(answer.body), 'INVALID_JSON', label);
        if (route.startsWith('/v1/')) assert.equal(answer.body.error.type, 'invalid_request_error', label);
        else if (route.startsWith('/api/batch/')) assert.match(answer.body.detail, /prototype/, label);
        else assert.match(answer.body.error, /prototype/, label);
      }
    }
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
  const jobs = (await call(`${url}/api/batch/jobs`)).body;
  assert.equal(jobs.total, 1, 'only the clean batch was admitted');
});
