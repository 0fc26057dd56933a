/**
 * GET /api/batch/results/{id} beyond the plain document: pages (offset, limit), NDJSON (by
 * query or Accept), base64 vectors, partial results of a running job, DELETE results, and
 * 400 INVALID_QUERY for bad values. Every format must carry exactly the same float32 vectors
 * and the same item and job-level errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { simVector } from '../src/sim/index.js';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

interface Fetched {
  status: number;
  type: string;
  text: string;
}

async function fetchText(url: string, headers: Record<string, string> = {}): Promise<Fetched> {
  const response = await fetch(url, { headers });
  return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** NDJSON: the summary line, then one object per item line. */
function parseNdjson(text: string): { head: any; items: any[] } {
  assert.ok(text.endsWith('\n'), 'every NDJSON line ends in a newline');
  const [head, ...items] = text.slice(0, -1).split('\n').map((line) => JSON.parse(line));
  assert.equal(head.index, undefined, 'the first line is the job summary, not an item');
  return { head, items };
}

function fromBase64(value: string): Float32Array {
  const bytes = Buffer.from(value, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes); // aligned, little-endian float32 as sent
  return new Float32Array(copy.buffer);
}

/** Item vectors as float32 arrays whichever way they were encoded (null for failed items). */
function vectors(items: any[]): (number[] | null)[] {
  return items.map((item) => {
    if (item.embedding === null) return null;
    if (typeof item.embedding === 'string') return Array.from(fromBase64(item.embedding));
    return (item.embedding as number[]).map(Math.fround);
  });
}

/** The items without their vectors: index, error, code, truncated. */
function shapes(items: any[]): unknown[] {
  return items.map(({ embedding, ...rest }) => ({ ...rest, hasVector: embedding !== null }));
}

/** Documents under the simulated node's 50-character limit, but for the one at `longAt`. */
function shortDocs(n: number, longAt: number): string[] {
  return Array.from({ length: n }, (_, i) => (i === longAt ? 'x'.repeat(200) : `doc ${i}`));
}

test('paging: offset and limit select items, errors follow their items, pages add up to the whole', async (t) => {
  const node = await startSim(t, { maxInputChars: 50 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '64' });
  const documents = shortDocs(600, 300);
  const { body } = await submit(url, { model: MODEL, documents, options: { truncate: false } });
  await waitForStatus(url, body.job_id, ['completed']);
  const base = `${url}/api/batch/results/${body.job_id}`;

  const whole = (await call(base)).body;
  assert.equal(whole.results.length, 600);
  assert.deepEqual([whole.offset, whole.limit, whole.next_offset, whole.partial, whole.encoding_format], [0, 600, null, false, 'float']);
  assert.deepEqual(whole.errors.map((e: any) => [e.index, e.code]), [[300, 'INPUT_REJECTED']]);
  assert.ok(whole.results.every((r: any, i: number) => r.index === i));

  const pages: any[] = [];
  for (let offset: number | null = 0; offset !== null;) {
    const page: any = (await call(`${base}?offset=${offset}&limit=250`)).body;
    assert.equal(page.offset, offset);
    assert.equal(page.limit, 250);
    assert.equal(page.total_items, 600);
    assert.equal(page.completed_items, 599);
    assert.equal(page.failed_items, 1);
    pages.push(page);
    offset = page.next_offset;
  }
  assert.deepEqual(pages.map((p) => [p.offset, p.results.length, p.next_offset]), [[0, 250, 250], [250, 250, 500], [500, 100, null]]);
  assert.deepEqual(pages.flatMap((p) => p.results), whole.results);
  // Each page's errors are its own items' errors only.
  assert.deepEqual(pages.map((p) => p.errors.map((e: any) => e.index)), [[], [300], []]);
  assert.equal(pages[1].results[50].code, 'INPUT_REJECTED');

  const one = (await call(`${base}?offset=300&limit=1`)).body;
  assert.deepEqual(one.results, [whole.results[300]]);
  assert.deepEqual(one.errors, whole.errors);
  const end = (await call(`${base}?offset=600`)).body;
  assert.deepEqual([end.results, end.errors, end.limit, end.next_offset], [[], [], 0, null]);
  const tail = (await call(`${base}?offset=590`)).body;
  assert.deepEqual(tail.results, whole.results.slice(590));
});

test('NDJSON (by query or Accept) and base64 carry exactly the vectors and errors of the JSON document', async (t) => {
  const node = await startSim(t, { maxInputChars: 50 });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const documents = shortDocs(300, 7);
  const { body } = await submit(url, { model: MODEL, documents, options: { truncate: false } });
  await waitForStatus(url, body.job_id, ['completed']);
  const base = `${url}/api/batch/results/${body.job_id}`;

  const json = await fetchText(base);
  assert.match(json.type, /^application\/json/);
  const whole = JSON.parse(json.text);
  const expected = documents.map((d, i) => (i === 7 ? null : Array.from(simVector(MODEL, d, 768))));
  assert.deepEqual(vectors(whole.results), expected);
  const { results: _results, errors, ...summary } = whole;

  const byQuery = await fetchText(`${base}?format=ndjson`);
  assert.match(byQuery.type, /^application\/x-ndjson/);
  const byAccept = await fetchText(base, { accept: 'application/x-ndjson' });
  assert.match(byAccept.type, /^application\/x-ndjson/);
  assert.equal(byAccept.text, byQuery.text);
  const ndjson = parseNdjson(byQuery.text);
  assert.deepEqual(ndjson.head, { ...summary, errors: [] }, 'first line: the summary and the job-level errors (none)');
  assert.deepEqual(ndjson.items, whole.results, 'one line per item, the same objects as in results');
  assert.deepEqual(ndjson.items[7], { index: 7, embedding: null, error: whole.errors[0].error, code: 'INPUT_REJECTED' });

  // JSON is preferred when the client ranks it higher, and ?format wins over Accept.
  assert.match((await fetchText(base, { accept: 'application/json, application/x-ndjson;q=0.5' })).type, /^application\/json/);
  assert.match((await fetchText(`${base}?format=json`, { accept: 'application/x-ndjson' })).type, /^application\/json/);
  assert.match((await fetchText(base, { accept: '*/*' })).type, /^application\/json/);

  const b64 = await fetchText(`${base}?encoding_format=base64`);
  const b64Body = JSON.parse(b64.text);
  assert.equal(b64Body.encoding_format, 'base64');
  assert.equal(typeof b64Body.results[0].embedding, 'string');
  assert.deepEqual(vectors(b64Body.results), expected);
  assert.deepEqual(shapes(b64Body.results), shapes(whole.results));
  assert.deepEqual(b64Body.errors, whole.errors);
  assert.ok(b64.text.length * 2 < json.text.length, `base64 (${b64.text.length} B) is much smaller than JSON (${json.text.length} B)`);

  const b64Nd = parseNdjson((await fetchText(`${base}?format=ndjson&encoding_format=base64`)).text);
  assert.deepEqual(b64Nd.head, { ...summary, encoding_format: 'base64', errors: [] });
  assert.deepEqual(vectors(b64Nd.items), expected);
  assert.deepEqual(b64Nd.items, b64Body.results);

  const pagedNd = parseNdjson((await fetchText(`${base}?format=ndjson&offset=5&limit=5`)).text);
  assert.deepEqual([pagedNd.head.offset, pagedNd.head.limit, pagedNd.head.next_offset], [5, 5, 10]);
  assert.deepEqual(pagedNd.items, whole.results.slice(5, 10));
});

test('a cancelled job: CANCELLED items and the one job-level error in every format and page', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 30 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10' });
  const documents = docs(2000);
  const { body } = await submit(url, { model: MODEL, documents });
  await waitFor(async () => ((await call(`${url}/api/batch/jobs/${body.job_id}`)).body.progress.completed_items >= 20 ? true : undefined), 'some progress');
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' })).status, 200);
  const base = `${url}/api/batch/results/${body.job_id}`;
  const jobError = { index: null, error: 'Job cancelled by request', code: 'CANCELLED' };

  const whole = (await call(base)).body;
  assert.equal(whole.status, 'cancelled');
  assert.deepEqual(whole.errors, [jobError]);
  const done = whole.completed_items as number;
  assert.ok(done >= 20 && done < 2000);
  const cancelled = whole.results.filter((r: any) => r.code === 'CANCELLED');
  assert.equal(cancelled.length, 2000 - done);
  assert.ok(cancelled.every((r: any) => r.embedding === null && typeof r.error === 'string'));

  const nd = parseNdjson((await fetchText(`${base}?format=ndjson`)).text);
  assert.deepEqual(nd.head.errors, [jobError]);
  assert.equal(nd.head.status, 'cancelled');
  assert.deepEqual(nd.items, whole.results);

  const b64 = (await call(`${base}?encoding_format=base64`)).body;
  assert.deepEqual(b64.errors, [jobError]);
  assert.deepEqual(shapes(b64.results), shapes(whole.results));
  assert.deepEqual(vectors(b64.results), vectors(whole.results));

  // Pages hold the same items, and the job-level error is on every page (CANCELLED items
  // are not failed items: they have no entry of their own).
  assert.equal(whole.results[1999].code, 'CANCELLED');
  for (const offset of [0, 1000, 1990]) {
    const page = (await call(`${base}?offset=${offset}&limit=10`)).body;
    assert.deepEqual(page.results, whole.results.slice(offset, offset + 10));
    assert.deepEqual(page.errors, [jobError]);
  }
});

test('partial=true on a running job returns its finished items only; the plain call still answers 409', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 40, maxInputChars: 50 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10' });
  // Enough work to keep running well after the fetches below (2 calls in flight, 40 ms each).
  const documents = shortDocs(3000, 3);
  const { body } = await submit(url, { model: MODEL, documents, options: { truncate: false } });
  const base = `${url}/api/batch/results/${body.job_id}`;
  const seen = await waitFor(async () => {
    const s = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
    // The over-long document's chunk is split to isolate it, so it may finish after later chunks.
    return s.progress.completed_items >= 30 && s.progress.failed_items === 1 ? s : undefined;
  }, 'some finished items, the failed one among them');
  assert.equal(seen.status, 'running');

  const plain = await call(base);
  assert.equal(plain.status, 409);
  assert.equal(plain.body.code, 'JOB_NOT_FINISHED');

  const partial = await call(`${base}?partial=true`);
  assert.equal(partial.status, 200);
  const p = partial.body;
  assert.equal(p.status, 'running');
  assert.equal(p.partial, true);
  assert.equal(p.total_items, 3000);
  assert.ok(p.results.length >= 31 && p.results.length < 3000, `${p.results.length} finished items`);
  const indexes = p.results.map((r: any) => r.index);
  assert.deepEqual(indexes, [...indexes].sort((a, b) => a - b), 'in document order');
  for (const r of p.results) {
    if (r.index === 3) {
      assert.deepEqual([r.embedding, r.code], [null, 'INPUT_REJECTED'], 'failed items are finished items');
    } else {
      assert.deepEqual(r.embedding.map(Math.fround), Array.from(simVector(MODEL, documents[r.index]!, 768)));
    }
  }
  assert.deepEqual(p.errors.map((e: any) => [e.index, e.code]), [[3, 'INPUT_REJECTED']]);
  assert.ok(!p.results.some((r: any) => r.code === 'CANCELLED'), 'unprocessed items are left out, not marked');

  const nd = parseNdjson((await fetchText(`${base}?partial=true&format=ndjson&encoding_format=base64`)).text);
  assert.equal(nd.head.partial, true);
  assert.equal(nd.head.status, 'running');
  // Finished items stay finished (chunks may finish out of order, so compare by index).
  const later = new Map(nd.items.map((item) => [item.index as number, item]));
  for (const r of p.results) assert.deepEqual(vectors([later.get(r.index)]), vectors([r]), `item ${r.index}`);

  const page = (await call(`${base}?partial=true&offset=2990&limit=10`)).body;
  assert.deepEqual([page.offset, page.limit, page.next_offset, page.partial], [2990, 10, null, true]);
  assert.ok(page.results.every((r: any) => r.index >= 2990));

  // Once finished, partial=true is the complete document (partial: false).
  assert.equal((await call(`${url}/api/batch/jobs/${body.job_id}`, { method: 'DELETE' })).status, 200);
  const after = (await call(`${base}?partial=true`)).body;
  assert.equal(after.partial, false);
  assert.equal(after.results.length, 3000);
  assert.deepEqual(after, (await call(base)).body);
});

test('DELETE /api/batch/results/{id} purges a finished job, refuses an active one, 404s an unknown one', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 40 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10' });
  const finished = (await submit(url, { model: MODEL, documents: docs(5) })).body.job_id as string;
  await waitForStatus(url, finished, ['completed']);

  const purged = await call(`${url}/api/batch/results/${finished}`, { method: 'DELETE' });
  assert.equal(purged.status, 200);
  assert.deepEqual(purged.body, { job_id: finished, purged: true, message: 'Job and results deleted' });
  for (const path of [`/api/batch/results/${finished}`, `/api/batch/jobs/${finished}`]) {
    const gone = await call(`${url}${path}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.body.code, 'JOB_NOT_FOUND');
  }
  const again = await call(`${url}/api/batch/results/${finished}`, { method: 'DELETE' });
  assert.deepEqual([again.status, again.body.code], [404, 'JOB_NOT_FOUND']);
  const stats = (await call(`${url}/api/stats`)).body.batch_jobs;
  assert.equal(stats.stored_jobs, 0);

  const active = (await submit(url, { model: MODEL, documents: docs(2000) })).body.job_id as string;
  const refused = await call(`${url}/api/batch/results/${active}`, { method: 'DELETE' });
  assert.deepEqual([refused.status, refused.body.code], [409, 'JOB_NOT_FINISHED']);
  assert.equal((await call(`${url}/api/batch/jobs/${active}`)).body.status, 'running', 'nothing deleted');
  assert.equal((await call(`${url}/api/batch/jobs/${active}`, { method: 'DELETE' })).status, 200);
  assert.equal((await call(`${url}/api/batch/results/${active}`, { method: 'DELETE' })).status, 200, 'a cancelled job can be purged');

  for (const id of ['6f1c1c84-2f4e-4d6a-9a57-1a1e0e0c2a11', 'not-a-uuid']) {
    const unknown = await call(`${url}/api/batch/results/${id}`, { method: 'DELETE' });
    assert.deepEqual([unknown.status, unknown.body.code], [404, 'JOB_NOT_FOUND']);
  }
});

test('a download cut short by a purge fails instead of ending as a shorter valid document', async (t) => {
  const node = await startSim(t, { dims: 1024 });
  const { url } = await startTestGateway(t, { backend: [node.url] });
  // About 60 MB of JSON: far more than the socket buffers hold while the client pauses.
  const { body } = await submit(url, { model: MODEL, documents: docs(5000) });
  await waitForStatus(url, body.job_id, ['completed']);
  const response = await fetch(`${url}/api/batch/results/${body.job_id}`);
  assert.equal(response.status, 200);
  const reader = response.body!.getReader();
  await reader.read();
  assert.equal((await call(`${url}/api/batch/results/${body.job_id}`, { method: 'DELETE' })).status, 200);
  let received = 0;
  await assert.rejects(async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
    }
  }, 'the transfer is cut off');
  assert.ok(received < 60e6, `${received} bytes before the cut`);
});

test('bad query values answer 400 INVALID_QUERY naming the parameter', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url] });
  const { body } = await submit(url, { model: MODEL, documents: docs(3) });
  await waitForStatus(url, body.job_id, ['completed']);
  const base = `${url}/api/batch/results/${body.job_id}`;
  const cases: [string, RegExp][] = [
    ['offset=-1', /^offset must be an integer >= 0/],
    ['offset=1.5', /^offset/],
    ['offset=abc', /^offset/],
    ['offset=', /^offset/],
    ['offset=4', /^offset 4 is past the end of job .* \(3 items\)/],
    ['limit=0', /^limit must be an integer from 1 to 10,000/],
    ['limit=10001', /^limit/],
    ['limit=2.5', /^limit/],
    ['limit=ten', /^limit/],
    ['limit=1&limit=2', /^limit/],
    ['format=xml', /^format must be json or ndjson/],
    ['encoding_format=binary', /^encoding_format must be float or base64/],
    ['partial=maybe', /^partial must be true or false/],
  ];
  for (const [query, detail] of cases) {
    const answer = await call(`${base}?${query}`);
    assert.equal(answer.status, 400, query);
    assert.equal(answer.body.code, 'INVALID_QUERY', query);
    assert.match(answer.body.detail, detail, query);
  }
  assert.equal((await call(`${base}?offset=3&limit=10000&format=json&encoding_format=float&partial=false`)).status, 200);
});
