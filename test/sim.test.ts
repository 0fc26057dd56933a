import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { CommanderError } from 'commander';
import { simCommand } from '../src/cli/sim.js';
import { SimConfigError, simVector, startSimNode, type SimNode, type SimOptions, type SimStats } from '../src/sim/index.js';
import { RunnerClock } from '../src/sim/behaviour.js';
import { canonicalModelName } from '../src/sim/models.js';
import { JsonBytes, VectorJsonCache } from '../src/sim/vectors.js';
import { formatFloat32 } from '../src/util/float32Json.js';

type Json = Record<string, unknown>;

async function start(t: TestContext, options: Partial<SimOptions> = {}): Promise<SimNode> {
  const node = await startSimNode(options);
  t.after(() => node.close());
  return node;
}

async function post(node: SimNode, path: string, body: unknown): Promise<{ status: number; json: Json }> {
  const res = await fetch(`${node.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Json };
}

async function getJson(node: SimNode, path: string): Promise<Json> {
  const res = await fetch(`${node.url}${path}`);
  assert.equal(res.status, 200);
  return (await res.json()) as Json;
}

/** Waits for a state rather than a duration, so no test depends on timing. */
async function waitFor(node: SimNode, predicate: (stats: SimStats) => boolean): Promise<void> {
  while (!predicate(node.stats())) await delay(2);
}

function norm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += (values[i] ?? 0) ** 2;
  return Math.sqrt(sum);
}

function embeddings(json: Json): number[][] {
  return json['embeddings'] as number[][];
}

/** Numbers are printed as the shortest decimal of a float32 (as Ollama's Go server does): compare as float32. */
function f32(values: unknown): number[] {
  return (values as number[]).map(Math.fround);
}

describe('simVector', () => {
  it('is deterministic, unit length, float32-exact and text dependent', () => {
    const a = simVector('nomic-embed-text', 'hello world', 768);
    assert.equal(a.length, 768);
    assert.deepEqual(a, simVector('nomic-embed-text', 'hello world', 768));
    assert.deepEqual(a, simVector('Nomic-Embed-Text:latest', 'hello world', 768), 'x and x:latest are one model');
    assert.notDeepEqual(a, simVector('nomic-embed-text', 'hello world!', 768));
    assert.notDeepEqual(a, simVector('all-minilm', 'hello world', 768));
    assert.ok(Math.abs(norm(a) - 1) < 1e-6);
    const parsed = JSON.parse(JSON.stringify(Array.from(a))) as number[];
    for (let i = 0; i < a.length; i++) assert.equal(parsed[i], Math.fround(parsed[i] ?? NaN));
    assert.deepEqual(Float32Array.from(parsed), a);
  });
});

/** A vector's JSON as the node printed it by joining strings: every component's shortest float32 form. */
function stringBuilt(model: string, text: string, dims: number): string {
  return `[${Array.from(simVector(model, text, dims), (value) => formatFloat32(value)).join(',')}]`;
}

/** The raw text of an /api/embed answer's `embeddings` array, between its brackets. */
async function rawEmbeddings(node: SimNode, body: unknown): Promise<string> {
  const res = await fetch(`${node.url}/api/embed`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(res.status, 200);
  const text = await res.text();
  const head = '"embeddings":[';
  const from = text.indexOf(head) + head.length;
  return text.slice(from, text.indexOf('],"total_duration":', from));
}

describe('sim vector bytes', () => {
  it('simVector gives the vectors it always gave (SHA-256 of their string-built JSON, pinned)', () => {
    const pinned: [string, string, number, string][] = [
      ['nomic-embed-text', 'hello world', 768, '87b650139526c7e6'],
      ['all-minilm', 'x', 384, '1e17cba5b90de08a'],
      ['mxbai-embed-large:latest', '', 1024, '31d602d4ad6aa877'],
      ['all-minilm', 'caf\u00e9', 3, '5acb195e7d0fb5db'],
      ['m', 'one', 1, '080a9ed428559ef6'],
      ['m179', 'tiny', 179, 'afec5e59af93b4b6'],
    ];
    for (const [model, text, dims, digest] of pinned) {
      assert.equal(createHash('sha256').update(stringBuilt(model, text, dims)).digest('hex').slice(0, 16), digest, `${model} ${text} ${dims}`);
    }
  });

  it('answers exactly the string-built JSON, for new, second-time and cached texts, at any dims', async (t) => {
    // 179 dims has components printed in 17 bytes (0.0000019634524), past the usual 16.
    const dimsList = [1, 3, 179, 384, 768];
    const node = await start(t, { models: Object.fromEntries(dimsList.map((dims) => [`m${dims}`, dims])) });
    const texts = ['alpha', 'beta', 'alpha', '', 'caf\u00e9 \u{1f600}', 'x'.repeat(500)];
    for (const dims of dimsList) {
      const expected = texts.map((text) => stringBuilt(`m${dims}`, text, dims)).join(',');
      // Three calls: every text new (one repeat inside), then met a second time (rebuilt), then kept.
      for (let call = 0; call < 3; call++) assert.equal(await rawEmbeddings(node, { model: `m${dims}`, input: texts }), expected, `${dims} dims, call ${call}`);
      const cut = await rawEmbeddings(node, { model: `m${dims}`, input: texts, dimensions: 2 });
      assert.equal(cut, dims > 2 ? texts.map((text) => stringBuilt(`m${dims}`, text, 2)).join(',') : expected);
    }
    const legacy = await fetch(`${node.url}/api/embeddings`, { method: 'POST', body: JSON.stringify({ model: 'm384', prompt: 'alpha' }) });
    assert.equal(await legacy.text(), `{"embedding":${stringBuilt('m384', 'alpha', 384)}}`);
    const model = await fetch(`${node.url}/api/embed`, { method: 'POST', body: JSON.stringify({ model: 'm3:latest', input: 'x' }) });
    assert.match(await model.text(), /^\{"model":"m3:latest","embeddings":\[\[[^\]]*\]\],"total_duration":\d+,"load_duration":\d+,"prompt_eval_count":1\}$/);
    const stats = node.stats();
    // Per dims: 5 distinct texts and the repeat a hit, then 6 hits per call; cut to 2 dims the
    // same again (but 1 dim is not cut: 6 hits); the legacy call a hit, m3's 'x' a miss.
    assert.equal(stats.cacheMisses, dimsList.length * 5 + (dimsList.length - 1) * 5 + 1);
    assert.equal(stats.cacheHits, dimsList.length * 13 + (dimsList.length - 1) + 6 + 1);
  });

  it('poisoned documents keep their shapes: first element swapped, or one component short', async (t) => {
    const texts = ['clean', 'POISON here', 'also clean', 'more POISON'];
    const dims = 5;
    const firsts = { null: 'null', string: '"NaN"', boolean: 'true', huge: '1e400' } as const;
    for (const [shape, first] of Object.entries(firsts)) {
      const node = await start(t, { dims, poison: 'POISON', badVector: shape as keyof typeof firsts });
      const expected = texts.map((text) => {
        const good = stringBuilt('nomic-embed-text', text, dims);
        return text.includes('POISON') ? `[${first}${good.slice(good.indexOf(','))}` : good;
      });
      for (let call = 0; call < 2; call++) assert.equal(await rawEmbeddings(node, { model: 'nomic-embed-text', input: texts }), expected.join(','), shape);
    }
    const short = await start(t, { dims, poison: 'POISON', badVector: 'short' });
    const expected = texts.map((text) => stringBuilt('nomic-embed-text', text, text.includes('POISON') ? dims - 1 : dims));
    assert.equal(await rawEmbeddings(short, { model: 'nomic-embed-text', input: texts }), expected.join(','));
    const sick = await start(t, { dims: 1, poison: null, badVector: 'null' });
    assert.equal(await rawEmbeddings(sick, { model: 'nomic-embed-text', input: ['a', 'b'] }), '[null],[null]');
  });

  it('VectorJsonCache counts and evicts as an LRU of every entry by bytes, whichever entries keep their bytes', () => {
    const dims = 24;
    const key = canonicalModelName('all-minilm');
    const cache = new VectorJsonCache(0);
    // The model the cache must match: key -> length, in recency order.
    const model = new Map<string, number>();
    let capacity = 0;
    let hits = 0;
    let misses = 0;
    const lengthOf = (text: string): number => stringBuilt('all-minilm', text, dims).length;
    const evict = (): void => {
      let total = [...model.values()].reduce((a, b) => a + b, 0);
      for (const [key, length] of model) {
        if (total <= capacity) break;
        model.delete(key);
        total -= length;
      }
    };
    const resize = (bytes: number): void => {
      capacity = bytes;
      cache.resize(bytes);
      evict();
    };
    const call = (text: string): void => {
      const out = new JsonBytes(16);
      out.text('>');
      cache.write(key, text, dims, out);
      assert.equal(out.result().toString('latin1'), `>${stringBuilt('all-minilm', text, dims)}`, text);
      const length = model.get(text);
      if (length !== undefined) {
        hits++;
        model.delete(text);
        model.set(text, length);
      } else {
        misses++;
        if (lengthOf(text) <= capacity) model.set(text, lengthOf(text));
        evict();
      }
      assert.equal(cache.hits, hits);
      assert.equal(cache.misses, misses);
      assert.equal(cache.size, model.size);
      assert.equal(cache.bytes, [...model.values()].reduce((a, b) => a + b, 0));
      assert.ok(cache.storedBytes <= cache.bytes);
      assert.ok(cache.heldBytes >= cache.storedBytes && cache.heldBytes <= cache.heldLimit, 'blocks compacted when mostly empty');
    };
    call('a');
    resize(10 * lengthOf('a'));
    const texts = Array.from({ length: 40 }, (_, i) => `text ${i % 7 === 0 ? 'hot' : i}`);
    for (const text of texts) call(text);
    for (const text of texts.slice(0, 20)) call(text);
    // Texts kept hot while everything around them is evicted pin one old block each,
    // until the blocks are compacted.
    const pinned: string[] = [];
    for (let r = 0; r < 6; r++) {
      pinned.push(`pinned ${r}`);
      for (let k = 0; k < 6; k++) {
        call(`filler ${r}.${k}`);
        call(`filler ${r}.${k}`);
        for (const text of pinned) call(text);
      }
    }
    resize(3 * lengthOf('a'));
    for (const text of [...texts].reverse()) call(text);
    resize(0);
    call('hot');
    assert.equal(cache.bytes, 0);
    assert.equal(cache.json(key, 'z', 3).toString('latin1'), stringBuilt('all-minilm', 'z', 3));
  });
});

describe('sim runner clock', () => {
  it('serial: a queued call is due its own time after the call before it was due, so the node keeps its nominal rate', () => {
    const clock = new RunnerClock();
    // Three calls of 64 ms arrive together at t=100: due at 164, 228, 292, whenever each actually got the runner.
    assert.deepEqual([0, 1, 2].map(() => clock.begin(100, 64, true)), [164, 228, 292]);
    // A call arriving at an idle runner (t=500) begins when it arrives: idle time earns no credit.
    assert.equal(clock.begin(500, 10, true), 510);
  });

  it('serial: a call that ends early (client gone, failure) frees the runner at once', () => {
    const clock = new RunnerClock();
    assert.equal(clock.begin(0, 1000, true), 1000);
    clock.abandon(40);
    assert.equal(clock.begin(30, 5, true), 45);
    // Abandoning after the due time changes nothing.
    clock.abandon(100);
    assert.equal(clock.begin(46, 5, true), 51);
  });

  it('not serial: every call is due its own time after it arrived', () => {
    const clock = new RunnerClock();
    assert.deepEqual([clock.begin(100, 64, false), clock.begin(100, 64, false), clock.begin(120, 8, false)], [164, 164, 128]);
  });
});

describe('sim node: embeddings', { timeout: 20_000 }, () => {
  it('POST /api/embed with a string input returns the Ollama shape and exact float32 vectors', async (t) => {
    const node = await start(t);
    const { status, json } = await post(node, '/api/embed', { model: 'nomic-embed-text', input: 'hello world' });
    assert.equal(status, 200);
    assert.equal(json['model'], 'nomic-embed-text');
    assert.equal(typeof json['total_duration'], 'number');
    assert.equal(typeof json['load_duration'], 'number');
    assert.ok((json['prompt_eval_count'] as number) > 0);
    const [vector] = embeddings(json);
    assert.ok(vector);
    // The JSON numbers are the float32 values themselves, no rounding needed.
    assert.deepEqual(f32(vector), Array.from(simVector('nomic-embed-text', 'hello world', 768)));
    assert.ok(Math.abs(norm(vector) - 1) < 1e-6);
    assert.equal(node.stats().embedCalls, 1);
    assert.equal(node.stats().documents, 1);
  });

  it('POST /api/embed with an array keeps order, serves repeats from the cache, and accepts x:latest', async (t) => {
    const node = await start(t);
    const input = ['alpha', 'beta', 'alpha', 'gamma'];
    const { status, json } = await post(node, '/api/embed', { model: 'nomic-embed-text:latest', input });
    assert.equal(status, 200);
    const vectors = embeddings(json);
    assert.equal(vectors.length, 4);
    input.forEach((text, i) => assert.deepEqual(f32(vectors[i]), Array.from(simVector('nomic-embed-text', text, 768))));
    const stats = node.stats();
    assert.equal(stats.cacheHits, 1);
    assert.equal(stats.cacheMisses, 3);
    assert.deepEqual(stats.documentsByModel, { 'nomic-embed-text:latest': 4 });
  });

  it('serves per-model dimensions, honours `dimensions`, and answers an empty input with no vectors', async (t) => {
    const node = await start(t, { dims: 16, models: { 'nomic-embed-text': null, 'all-minilm': 384 } });
    const small = await post(node, '/api/embed', { model: 'nomic-embed-text', input: 'x' });
    assert.equal(embeddings(small.json)[0]?.length, 16);
    const minilm = await post(node, '/api/embed', { model: 'all-minilm', input: 'x' });
    assert.equal(embeddings(minilm.json)[0]?.length, 384);
    const cut = await post(node, '/api/embed', { model: 'all-minilm', input: ['x'], dimensions: 64 });
    const [vector] = embeddings(cut.json);
    assert.deepEqual(f32(vector), Array.from(simVector('all-minilm', 'x', 64)));
    assert.ok(Math.abs(norm(vector ?? []) - 1) < 1e-6);
    const tooMany = await post(node, '/api/embed', { model: 'all-minilm', input: 'x', dimensions: 4096 });
    assert.equal(embeddings(tooMany.json)[0]?.length, 384, 'Ollama ignores dimensions above the model size');
    const empty = await post(node, '/api/embed', { model: 'all-minilm', input: '' });
    assert.equal(empty.status, 200);
    assert.deepEqual(embeddings(empty.json), []);
    assert.deepEqual(node.stats().lastEmbed, {
      endpoint: '/api/embed',
      model: 'all-minilm',
      inputs: 0,
      truncate: null,
      dimensions: null,
      keepAlive: null,
      options: null,
    });
  });

  it('legacy POST /api/embeddings returns {embedding}', async (t) => {
    const node = await start(t);
    const { status, json } = await post(node, '/api/embeddings', { model: 'mxbai-embed-large', prompt: 'legacy text' });
    assert.equal(status, 200);
    assert.deepEqual(Object.keys(json), ['embedding']);
    assert.deepEqual(f32(json['embedding']), Array.from(simVector('mxbai-embed-large', 'legacy text', 1024)));
    assert.equal(node.stats().legacyEmbedCalls, 1);
    assert.equal(node.stats().embedCalls, 0);
  });

  it('cuts inputs over maxInputChars, or answers 400 when truncate is false', async (t) => {
    const node = await start(t, { maxInputChars: 10 });
    const long = 'abcdefghijklmnop';
    const refused = await post(node, '/api/embed', { model: 'nomic-embed-text', input: ['ok', long], truncate: false });
    assert.equal(refused.status, 400);
    assert.deepEqual(refused.json, { error: 'the input length exceeds the context length' });
    const cut = await post(node, '/api/embed', { model: 'nomic-embed-text', input: [long], truncate: true, keep_alive: '5m' });
    assert.equal(cut.status, 200);
    assert.deepEqual(f32(embeddings(cut.json)[0]), Array.from(simVector('nomic-embed-text', long.slice(0, 10), 768)));
    assert.equal(node.stats().lastEmbed?.keepAlive, '5m');
    assert.equal(node.stats().rejected, 1);
  });
});

describe('sim node: metadata and errors', { timeout: 20_000 }, () => {
  it('lists models with :latest, reports its version, ps and show', async (t) => {
    const node = await start(t);
    const tags = (await getJson(node, '/api/tags'))['models'] as Json[];
    assert.deepEqual(
      tags.map((m) => m['name']),
      ['nomic-embed-text:latest', 'mxbai-embed-large:latest', 'all-minilm:latest'],
    );
    const [first] = tags;
    assert.equal(first?.['model'], 'nomic-embed-text:latest');
    assert.match(String(first?.['digest']), /^[0-9a-f]{64}$/);
    assert.equal((first?.['details'] as Json)['family'], 'nomic-bert');
    assert.deepEqual(await getJson(node, '/api/version'), { version: '0.5.7' });
    assert.deepEqual(await getJson(node, '/api/ps'), { models: [] });
    await post(node, '/api/embed', { model: 'all-minilm', input: 'x' });
    const ps = (await getJson(node, '/api/ps'))['models'] as Json[];
    assert.deepEqual(ps.map((m) => m['name']), ['all-minilm:latest']);
    const show = await post(node, '/api/show', { model: 'all-minilm' });
    assert.equal((show.json['model_info'] as Json)['bert.embedding_length'], 384);
  });

  it('answers unknown models, rejected models, bad JSON and unknown paths like Ollama', async (t) => {
    const node = await start(t, { rejectModels: ['all-minilm'] });
    const unknown = await post(node, '/api/embed', { model: 'x', input: 'a' });
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.json, { error: 'model "x" not found, try pulling it first' });
    const rejected = await post(node, '/api/embeddings', { model: 'all-minilm', prompt: 'a' });
    assert.equal(rejected.status, 404);
    assert.deepEqual(rejected.json, { error: 'model "all-minilm" not found, try pulling it first' });
    const missing = await post(node, '/api/embed', { input: 'a' });
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.json, { error: 'model is required' });
    const badType = await post(node, '/api/embed', { model: 'nomic-embed-text', input: [1, 2] });
    assert.deepEqual(badType, { status: 400, json: { error: 'invalid input type' } });

    const badJson = await fetch(`${node.url}/api/embed`, { method: 'POST', body: '{"model":' });
    assert.equal(badJson.status, 400);
    assert.equal(typeof ((await badJson.json()) as Json)['error'], 'string');

    for (const [method, path] of [['GET', '/nope'], ['GET', '/api/embed'], ['POST', '/api/nothing']] as const) {
      const res = await fetch(`${node.url}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      assert.equal(res.status, 404);
      assert.equal(await res.text(), '404 page not found');
    }
    assert.equal(node.stats().notFound, 3);
  });

  it('legacyOnly hides /api/embed but keeps /api/embeddings', async (t) => {
    const node = await start(t, { legacyOnly: true });
    const res = await fetch(`${node.url}/api/embed`, { method: 'POST', body: '{"model":"nomic-embed-text","input":"a"}' });
    assert.equal(res.status, 404);
    assert.equal(await res.text(), '404 page not found');
    const legacy = await post(node, '/api/embeddings', { model: 'nomic-embed-text', prompt: 'a' });
    assert.equal(legacy.status, 200);
    assert.equal(node.stats().embedCalls, 0);
    assert.equal(node.stats().legacyEmbedCalls, 1);
  });
});

describe('sim node: behaviour knobs', { timeout: 20_000 }, () => {
  it('serial mode queues concurrent calls and runs them one at a time', async (t) => {
    // hang holds the first call on the runner, so the queue can be observed without timing.
    const node = await start(t, { serial: true, hang: true });
    const texts = ['one', 'two', 'three', 'four'];
    const calls = texts.map((input) => post(node, '/api/embed', { model: 'nomic-embed-text', input }));
    await waitFor(node, (s) => s.inFlight === 1 && s.queued === 3);
    assert.equal(node.stats().hung, 1);
    node.configure({ hang: false });
    const answers = await Promise.all(calls);
    answers.forEach((answer, i) => {
      assert.equal(answer.status, 200);
      assert.deepEqual(f32(embeddings(answer.json)[0]), Array.from(simVector('nomic-embed-text', texts[i] ?? '', 768)));
    });
    const stats = node.stats();
    assert.equal(stats.maxInFlight, 1);
    assert.equal(stats.maxQueued, 3);
    assert.equal(stats.documents, 4);
    assert.equal(stats.inFlight, 0);
  });

  it('without serial, concurrent calls run together', async (t) => {
    const node = await start(t, { hang: true });
    const calls = [1, 2, 3, 4].map((n) => post(node, '/api/embed', { model: 'nomic-embed-text', input: `t${n}` }));
    await waitFor(node, (s) => s.inFlight === 4);
    assert.equal(node.stats().queued, 0);
    node.configure({ hang: false });
    for (const answer of await Promise.all(calls)) assert.equal(answer.status, 200);
  });

  it('failureRate 1 answers 500 simulated failure; a seed makes failures reproducible', async (t) => {
    const node = await start(t, { failureRate: 1 });
    for (let i = 0; i < 3; i++) {
      const { status, json } = await post(node, '/api/embed', { model: 'nomic-embed-text', input: 'a' });
      assert.equal(status, 500);
      assert.deepEqual(json, { error: 'simulated failure' });
    }
    assert.equal(node.stats().failures, 3);
    assert.equal(node.stats().documents, 0);

    const statuses = async (n: SimNode): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 24; i++) out.push((await post(n, '/api/embed', { model: 'nomic-embed-text', input: 'a' })).status);
      return out;
    };
    const a = await start(t, { failureRate: 0.5, failureSeed: 7 });
    const b = await start(t, { failureRate: 0.5, failureSeed: 7 });
    const first = await statuses(a);
    assert.deepEqual(await statuses(b), first);
    assert.ok(first.includes(200) && first.includes(500), `both outcomes occur: ${first.join(',')}`);
  });

  it('close() ends a hung call with a socket error, and is idempotent', async (t) => {
    const node = await startSimNode({ hang: true });
    t.after(() => node.close());
    const call = fetch(`${node.url}/api/embed`, { method: 'POST', body: '{"model":"nomic-embed-text","input":"a"}' });
    // Attach the expectation first: the call fails while close() is still settling.
    const failed = assert.rejects(call, (error: unknown) => {
      assert.ok(error instanceof TypeError);
      assert.ok(error.cause, 'the socket error is the cause');
      return true;
    });
    await waitFor(node, (s) => s.hung === 1);
    await Promise.all([node.close(), node.close()]);
    await failed;
    assert.equal(node.stats().hung, 0);
    assert.equal(node.stats().aborted, 1);
  });

  it('a client going away mid-delay frees the runner and clears its timer', async (t) => {
    // A leaked 60 s timer would keep this test process alive long after the suite.
    const node = await start(t, { delayPerCallMs: 60_000, serial: true });
    const controller = new AbortController();
    const call = fetch(`${node.url}/api/embed`, {
      method: 'POST',
      body: '{"model":"nomic-embed-text","input":"a"}',
      signal: controller.signal,
    });
    await waitFor(node, (s) => s.inFlight === 1);
    controller.abort();
    await assert.rejects(call, { name: 'AbortError' });
    await waitFor(node, (s) => s.inFlight === 0 && s.aborted === 1);
    node.configure({ delayPerCallMs: 0 });
    assert.equal((await post(node, '/api/embed', { model: 'nomic-embed-text', input: 'b' })).status, 200);
  });

  it('POST /sim/config changes behaviour at runtime; /sim/stats and /sim/reset mirror the API', async (t) => {
    const node = await start(t);
    const set = await post(node, '/sim/config', { failureRate: 1 });
    assert.equal(set.status, 200);
    assert.equal(set.json['failureRate'], 1);
    assert.equal((await post(node, '/api/embed', { model: 'nomic-embed-text', input: 'a' })).status, 500);
    const bad = await post(node, '/sim/config', { failureRate: 2 });
    assert.equal(bad.status, 400);
    assert.match(String(bad.json['error']), /failureRate/);
    assert.equal((await post(node, '/sim/config', { nope: true })).status, 400);
    assert.equal(node.options().failureRate, 1, 'a refused patch changes nothing');
    assert.throws(() => node.configure({ dims: 0 }), SimConfigError);
    node.configure({ failureRate: 0 });
    assert.equal((await post(node, '/api/embed', { model: 'nomic-embed-text', input: 'a' })).status, 200);
    const stats = await getJson(node, '/sim/stats');
    assert.equal(stats['embedCalls'], 2);
    assert.equal(stats['failures'], 1);
    assert.equal(stats['documents'], 1);
    const reset = await post(node, '/sim/reset', {});
    assert.equal(reset.json['embedCalls'], 0);
    assert.equal(node.stats().failures, 0);
  });
});

describe('sim node: generate and chat', { timeout: 20_000 }, () => {
  it('streams chat as NDJSON chunks ending in done:true', async (t) => {
    const node = await start(t);
    const res = await fetch(`${node.url}/api/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: 'nomic-embed-text', messages: [{ role: 'user', content: 'hi there' }] }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/x-ndjson');
    const lines = (await res.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as Json);
    assert.ok(lines.length >= 3, `several chunks, got ${lines.length}`);
    const last = lines.at(-1);
    assert.equal(last?.['done'], true);
    assert.equal(last?.['done_reason'], 'stop');
    assert.equal(typeof last?.['eval_count'], 'number');
    let streamed = '';
    for (const chunk of lines.slice(0, -1)) {
      assert.equal(chunk['done'], false);
      assert.equal(chunk['model'], 'nomic-embed-text');
      const message = chunk['message'] as Json;
      assert.equal(message['role'], 'assistant');
      streamed += String(message['content']);
    }
    const whole = await post(node, '/api/chat', {
      model: 'nomic-embed-text',
      stream: false,
      messages: [{ role: 'user', content: 'hi there' }],
    });
    assert.equal(whole.json['done'], true);
    assert.equal((whole.json['message'] as Json)['content'], streamed);
    assert.equal(node.stats().chatCalls, 2);
  });

  it('generate uses `response`, and an empty prompt just loads the model', async (t) => {
    const node = await start(t);
    const res = await fetch(`${node.url}/api/generate`, { method: 'POST', body: '{"model":"all-minilm","prompt":"why?"}' });
    const lines = (await res.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as Json);
    assert.ok(lines.length >= 3);
    assert.ok(lines.every((line) => typeof line['response'] === 'string' && !('message' in line)));
    assert.equal(lines.at(-1)?.['done'], true);
    const load = await post(node, '/api/generate', { model: 'all-minilm' });
    assert.equal(load.json['done_reason'], 'load');
    const unknown = await post(node, '/api/generate', { model: 'nope', prompt: 'x' });
    assert.equal(unknown.status, 404);
  });
});

describe('sollol sim command', () => {
  function parse(args: string[]): Record<string, unknown> {
    const command = simCommand().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    command.action(() => {}); // parse only: do not start a server
    command.parse(args, { from: 'user' });
    return command.opts();
  }

  it('parses flags, including repeatable --model NAME[:DIMS]', () => {
    const opts = parse(['--port', '0', '--model', 'a:16', '--model', 'b=8', '--model', 'c', '--serial', '--failure-rate', '0.25']);
    assert.deepEqual(opts['model'], { a: 16, b: 8, c: null });
    assert.equal(opts['port'], 0);
    assert.equal(opts['serial'], true);
    assert.equal(opts['failureRate'], 0.25);
    assert.equal(parse([])['port'], 11435);
    assert.equal(parse([])['host'], '127.0.0.1');
  });

  it('refuses bad values with a commander error', () => {
    for (const args of [['--failure-rate', '2'], ['--port', 'x'], ['--dims', '0'], ['--delay-per-doc', '-1'], ['--max-input-chars', '1.5']]) {
      assert.throws(() => parse(args), (error: unknown) => {
        assert.ok(error instanceof CommanderError);
        assert.equal(error.code, 'commander.invalidArgument');
        return true;
      });
    }
  });
});
