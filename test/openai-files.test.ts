/** The OpenAI Files API (/v1/files) for batch input files, through the official `openai` client. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toFile } from 'openai';
import { call, startSim, startTestGateway } from './helpers.js';
import { apiError, openaiClient } from './openaiClient.js';

const KEY_A = 'files-key-a-0123456789abcdef';
const KEY_B = 'files-key-b-0123456789abcdef';
const ADMIN = 'files-admin-0123456789abcdef';

const line = (id: string, url = '/v1/chat/completions', body: unknown = { model: 'llama3.2', messages: [{ role: 'user', content: id }] }): string =>
  JSON.stringify({ custom_id: id, method: 'POST', url, body });
const jsonl = (...lines: string[]): Buffer => Buffer.from(`${lines.join('\n')}\n`);

test('files.create, retrieve, list with pages, content and del', async (t) => {
  const sim = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sim.url] });
  const client = openaiClient(url);
  const content = jsonl(line('a'), line('b'), line('e1', '/v1/embeddings', { model: 'nomic-embed-text', input: ['x', 'y'] }));
  const created = await client.files.create({ file: await toFile(content, 'requests.jsonl'), purpose: 'batch' });
  assert.match(created.id, /^file-[0-9a-f]{24}$/);
  assert.deepEqual({ ...created, id: 'x', created_at: 0 }, { id: 'x', object: 'file', bytes: content.length, created_at: 0, filename: 'requests.jsonl', purpose: 'batch', status: 'processed', status_details: null });
  assert.ok(Math.abs(created.created_at - Date.now() / 1000) < 60);
  assert.deepEqual(await client.files.retrieve(created.id), created);
  assert.equal(await (await client.files.content(created.id)).text(), content.toString());

  const second = await client.files.create({ file: await toFile(jsonl(line('c')), 'two.jsonl'), purpose: 'batch' });
  const third = await client.files.create({ file: await toFile(jsonl(line('d')), 'three.jsonl'), purpose: 'batch' });
  const page = (await call(`${url}/v1/files?limit=2`)).body;
  assert.deepEqual(page.data.map((f: any) => f.id), [third.id, second.id], 'newest first');
  assert.equal(page.has_more, true);
  assert.equal(page.last_id, second.id);
  const next = (await call(`${url}/v1/files?limit=2&after=${page.last_id}`)).body;
  assert.deepEqual(next.data.map((f: any) => f.id), [created.id]);
  assert.equal(next.has_more, false);
  const all: string[] = [];
  for await (const file of client.files.list({ purpose: 'batch' })) all.push(file.id);
  assert.deepEqual(all, [third.id, second.id, created.id]);

  assert.deepEqual(await client.files.delete(created.id), { id: created.id, object: 'file', deleted: true });
  const gone = await apiError(client.files.retrieve(created.id));
  assert.equal(gone.status, 404);
  assert.equal(gone.code, 'FILE_NOT_FOUND');
  assert.equal((await apiError(client.files.content(created.id))).status, 404);
  assert.equal((await apiError(client.files.delete(created.id))).status, 404);
});

test('uploads are validated: purpose, multipart, and every bad line named', async (t) => {
  const { url } = await startTestGateway(t, { backend: ['embedded'] });
  const client = openaiClient(url);
  const purpose = await apiError(client.files.create({ file: await toFile(jsonl(line('a')), 'a.jsonl'), purpose: 'fine-tune' }));
  assert.equal(purpose.status, 400);
  assert.equal(purpose.param, 'purpose');
  const bad = await apiError(client.files.create({ file: await toFile(jsonl(line('a'), '{oops', line('a'), line('z', '/v1/images')), 'bad.jsonl'), purpose: 'batch' }));
  assert.equal(bad.status, 400);
  assert.equal(bad.code, 'INVALID_FILE');
  assert.match(bad.message, /Line 2: not valid JSON; Line 3: custom_id "a" is used by an earlier line; Line 4: url must be one of/);
  const empty = await apiError(client.files.create({ file: await toFile(Buffer.from('\n'), 'empty.jsonl'), purpose: 'batch' }));
  assert.match(empty.message, /no requests/);
  const json = await call(`${url}/v1/files`, { body: { purpose: 'batch' } });
  assert.equal(json.status, 400);
  assert.equal(json.body.error.code, 'INVALID_BODY');
  const form = new FormData();
  form.set('purpose', 'batch');
  const noFile = await fetch(`${url}/v1/files`, { method: 'POST', body: form });
  assert.equal(noFile.status, 400);
  assert.equal(((await noFile.json()) as any).error.param, 'file');
  assert.equal((await call(`${url}/v1/files?limit=0`)).body.error.code, 'INVALID_LIMIT');
  assert.deepEqual((await call(`${url}/v1/files`)).body.data, [], 'nothing refused was stored');
});

test('files belong to the key that uploaded them', async (t) => {
  const sim = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [sim.url], apiKey: [KEY_A, KEY_B], adminKey: [ADMIN] });
  const a = openaiClient(url, KEY_A);
  const b = openaiClient(url, KEY_B);
  const admin = openaiClient(url, ADMIN);
  const file = await a.files.create({ file: await toFile(jsonl(line('a')), 'a.jsonl'), purpose: 'batch' });
  assert.equal((await apiError(b.files.retrieve(file.id))).status, 404);
  assert.equal((await apiError(b.files.content(file.id))).status, 404);
  assert.equal((await apiError(b.files.delete(file.id))).status, 404);
  assert.deepEqual((await b.files.list()).data, []);
  assert.deepEqual((await a.files.list()).data.map((f) => f.id), [file.id]);
  assert.equal((await admin.files.retrieve(file.id)).id, file.id);
  assert.equal((await apiError(openaiClient(url, 'wrong-key-0123456789abcdef').files.list())).status, 401);
  assert.equal((await a.files.retrieve(file.id)).id, file.id, 'still there for its owner');
});
