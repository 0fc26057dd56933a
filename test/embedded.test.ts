import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { after, before, describe, test } from 'node:test';
import { benchTexts } from '../bench/embeddedDirect.js';
import { createEmbeddedBackend } from '../src/backends/embedded/backend.js';
import { applyLimits, cutToLimit, DEFAULT_MAX_CHARS } from '../src/backends/embedded/limits.js';
import { WorkerPool } from '../src/backends/embedded/pool.js';
import { BackendError, type ItemErrorCode } from '../src/backends/errors.js';
import type { EmbeddingBackend, EmbedRequest } from '../src/backends/types.js';

const MAX_CHARS = 2_000;

function request(inputs: readonly string[], extra: Partial<EmbedRequest> = {}): EmbedRequest {
  return { model: 'use-lite', inputs, options: { truncate: true }, ...extra };
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] ?? 0) * (b[i] ?? 0);
  return sum;
}

function rejectsWith(code: ItemErrorCode, pattern?: RegExp): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof BackendError, `expected a BackendError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (pattern) assert.match(error.message, pattern);
    return true;
  };
}

describe('embedded backend (USE-lite in worker threads)', () => {
  let backend: EmbeddingBackend;

  before(() => {
    backend = createEmbeddedBackend({ threads: 1, maxChars: MAX_CHARS });
  });
  after(async () => {
    await backend.close();
  });

  test('probe answers without loading the model', async () => {
    const fresh = createEmbeddedBackend({ threads: 2 });
    assert.equal(fresh.id, 'embedded');
    assert.equal(fresh.kind, 'embedded');
    assert.equal(fresh.maxConcurrency, 2);
    assert.deepEqual(await fresh.probe(), { healthy: true, models: ['use-lite:latest'] });
    await fresh.close();
    await fresh.close();
    assert.equal((await fresh.probe()).healthy, false);
    await assert.rejects(fresh.embed(request(['hello'])), rejectsWith('BACKEND_UNAVAILABLE'));
  });

  test('returns 512-dimensional unit vectors, identical for identical texts', async () => {
    const text = 'Embedding servers turned into a batch service.';
    const first = await backend.embed(request([text, 'Something else entirely.', text]));
    assert.equal(first.vectors.length, 3);
    assert.equal(first.truncated, undefined);
    for (const vector of first.vectors) {
      assert.ok(vector instanceof Float32Array);
      assert.equal(vector.length, 512);
      assert.ok(Math.abs(Math.sqrt(dot(vector, vector)) - 1) < 1e-5);
    }
    const [a, , c] = first.vectors as [Float32Array, Float32Array, Float32Array];
    assert.deepEqual(a, c);
    const again = await backend.embed(request([text], { model: 'use-lite:latest' }));
    assert.deepEqual(again.vectors[0], a);
  });

  test('a paraphrase is closer than an unrelated sentence', async () => {
    const { vectors } = await backend.embed(
      request(['How do I reset my password?', 'What are the steps to change my password?', 'The cat sat on the warm windowsill.']),
    );
    const [question, paraphrase, unrelated] = vectors as [Float32Array, Float32Array, Float32Array];
    assert.ok(dot(question, paraphrase) > dot(question, unrelated) + 0.1, `${dot(question, paraphrase)} vs ${dot(question, unrelated)}`);
  });

  test('over-long documents are cut and reported, or rejected when truncate is off', async () => {
    const long = benchTexts(200).join(' ').slice(0, MAX_CHARS + 500);
    const result = await backend.embed(request(['short one', long]));
    assert.deepEqual(result.truncated, [1]);
    const cut = await backend.embed(request([long.slice(0, MAX_CHARS)]));
    assert.ok(dot(result.vectors[1] as Float32Array, cut.vectors[0] as Float32Array) > 0.9999);

    await assert.rejects(
      backend.embed(request(['short one', long], { options: { truncate: false } })),
      rejectsWith('INPUT_REJECTED', new RegExp(`Input 1 .*limit of ${MAX_CHARS}`)),
    );
  });

  test('rejects empty inputs, unknown models and unsupported dimensions', async () => {
    await assert.rejects(backend.embed(request(['fine', ''])), rejectsWith('INPUT_REJECTED', /Input 1 is empty/));
    await assert.rejects(backend.embed(request(['hi'], { model: 'nomic-embed-text' })), rejectsWith('MODEL_NOT_FOUND'));
    await assert.rejects(backend.embed(request(['hi'], { options: { truncate: true, dimensions: 256 } })), rejectsWith('INPUT_REJECTED'));
    assert.deepEqual(await backend.embed(request([])), { vectors: [] });
  });

  test('abort rejects running and queued calls with CANCELLED, and the worker serves on', async () => {
    const texts = benchTexts(400);
    const running = new AbortController();
    const queued = new AbortController();
    const first = assert.rejects(backend.embed(request(texts, { signal: running.signal })), rejectsWith('CANCELLED'));
    const second = assert.rejects(backend.embed(request(texts, { signal: queued.signal })), rejectsWith('CANCELLED'));
    const third = backend.embed(request(['still served after the aborts']));
    setTimeout(() => {
      queued.abort();
      running.abort();
    }, 50);
    await Promise.all([first, second]);
    assert.equal((await third).vectors.length, 1);

    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(backend.embed(request(['x'], { signal: aborted.signal })), rejectsWith('CANCELLED'));
  });

  test('the main event loop keeps running while a large batch embeds', async () => {
    const texts = benchTexts(200).map((text) => text.slice(0, 100));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const { vectors } = await backend.embed(request(texts));
      assert.equal(vectors.length, 200);
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks >= 3, `only ${ticks} ticks`);
  });
});

describe('embedded limits', () => {
  test('default limit and cutting', () => {
    assert.equal(DEFAULT_MAX_CHARS, 8_000);
    assert.equal(cutToLimit('abcdef', 4), 'abcd');
    assert.equal(cutToLimit('ab\u{1F600}cd', 3), 'ab', 'never splits a surrogate pair');
    assert.deepEqual(applyLimits(['abc', 'abcdef'], 4, true), { texts: ['abc', 'abcd'], truncated: [1] });
    assert.throws(() => applyLimits(['abcdef'], 4, false), rejectsWith('INPUT_REJECTED', /limit of 4/));
  });
});

describe('embedded worker pool failures', () => {
  // A stand-in worker speaking the pool's protocol: echoes, crashes on 'crash', hangs on 'hang'.
  const stubWorker = `
    const { parentPort } = require('node:worker_threads');
    parentPort.on('message', (message) => {
      if (message.type !== 'embed') return;
      if (message.texts[0] === 'crash') process.exit(3);
      if (message.texts[0] === 'hang') return;
      const vectors = message.texts.map(() => new Float32Array([1, 0]));
      parentPort.postMessage({ type: 'result', id: message.id, vectors }, vectors.map((v) => v.buffer));
    });`;

  test('a crash fails the in-flight call with BACKEND_UNAVAILABLE and the worker is replaced', async () => {
    let spawned = 0;
    const pool = new WorkerPool({ size: 1, label: 'stub pool', spawn: () => (spawned++, new Worker(stubWorker, { eval: true })) });
    try {
      const crashing = assert.rejects(pool.run(['crash']), rejectsWith('BACKEND_UNAVAILABLE', /crashed/));
      const queued = pool.run(['after the crash']);
      await crashing;
      assert.equal((await queued).length, 1);
      assert.equal(spawned, 2);
      assert.equal(pool.workerCount, 1);
    } finally {
      await pool.close();
    }
  });

  test('close fails calls still running and is idempotent', async () => {
    const pool = new WorkerPool({ size: 1, label: 'stub pool', spawn: () => new Worker(stubWorker, { eval: true }) });
    const hanging = assert.rejects(pool.run(['hang']), rejectsWith('BACKEND_UNAVAILABLE'));
    const waiting = assert.rejects(pool.run(['never started']), rejectsWith('BACKEND_UNAVAILABLE'));
    await Promise.all([pool.close(), pool.close(), hanging, waiting]);
    await assert.rejects(pool.run(['late']), rejectsWith('BACKEND_UNAVAILABLE'));
    assert.equal(pool.workerCount, 0);
  });
});
