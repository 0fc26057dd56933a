/** The embedded default through the Batch API: real semantic vectors with no Ollama anywhere. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

const cosine = (a: number[], b: number[]): number => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const norm = (a: number[]): number => Math.sqrt(cosine(a, a));

describe('embedded backend through the batch API', () => {
  let url = '';
  const cleanups: (() => Promise<void>)[] = [];
  before(async () => {
    const t = { after: (fn: () => Promise<void>) => cleanups.push(fn) } as never;
    ({ url } = await startTestGateway(t, {}));
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
  });

  test('no --backend means the embedded model: use-lite in stats, health and the MODEL_NOT_FOUND list', async () => {
    const stats = (await call(`${url}/api/stats`)).body;
    assert.deepEqual(stats.backends.map((b: { kind: string; models: string[] }) => [b.kind, b.models]), [['embedded', ['use-lite:latest']]]);
    const wrong = await submit(url, { model: 'nomic-embed-text', documents: ['a'] });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.code, 'MODEL_NOT_FOUND');
    assert.match(wrong.body.detail, /use-lite/);
  });

  test('512-dim unit vectors; identical texts identical; a paraphrase closer than an unrelated text', async () => {
    const documents = ['How do I reset my password?', 'What are the steps to change my password?', 'The cat sat on the warm windowsill.', 'How do I reset my password?'];
    const { body } = await submit(url, { model: 'use-lite', documents });
    assert.equal(body.status, 'running');
    await waitForStatus(url, body.job_id, ['completed']);
    const results = (await call(`${url}/api/batch/results/${body.job_id}`)).body;
    assert.equal(results.dimensions, 512);
    const vectors = results.results.map((r: { embedding: number[] }) => r.embedding) as number[][];
    for (const v of vectors) {
      assert.equal(v.length, 512);
      assert.ok(Math.abs(norm(v) - 1) < 1e-4, `norm ${norm(v)}`);
    }
    assert.deepEqual(vectors[0], vectors[3]);
    assert.ok(cosine(vectors[0]!, vectors[1]!) > cosine(vectors[0]!, vectors[2]!) + 0.2, 'paraphrase closer than unrelated');
  });

  test('an over-long document is cut and marked truncated, or rejected per item with truncate false; an empty one is refused at the API', async () => {
    const long = 'word '.repeat(3000);
    const cut = await submit(url, { model: 'use-lite', documents: ['short text', long] });
    await waitForStatus(url, cut.body.job_id, ['completed']);
    const cutResults = (await call(`${url}/api/batch/results/${cut.body.job_id}`)).body;
    assert.equal(cutResults.results[1].truncated, true);
    assert.equal(cutResults.results[1].embedding.length, 512);
    assert.equal(cutResults.results[0].truncated, undefined);

    const strict = await submit(url, { model: 'use-lite', documents: ['short text', long], options: { truncate: false } });
    const status = await waitForStatus(url, strict.body.job_id, ['completed', 'failed']);
    assert.equal(status.progress.completed_items, 1);
    assert.equal(status.progress.failed_items, 1);
    const strictResults = (await call(`${url}/api/batch/results/${strict.body.job_id}`)).body;
    assert.deepEqual(strictResults.errors.map((e: { index: number; code: string }) => [e.index, e.code]), [[1, 'INPUT_REJECTED']]);

    const empty = await submit(url, { model: 'use-lite', documents: ['fine', ''] });
    assert.equal(empty.status, 400);
    assert.equal(empty.body.code, 'INVALID_DOCUMENT');
  });

  test('the HTTP API keeps answering while the model is busy', async () => {
    const documents = Array.from({ length: 300 }, (_, i) => `Sentence number ${i} about a busy embedding model that works in a worker thread.`);
    const { body } = await submit(url, { model: 'use-lite', documents });
    let answeredWhileRunning = 0;
    await waitFor(async () => {
      const status = (await call(`${url}/api/batch/jobs/${body.job_id}`)).body;
      if (status.status === 'running') answeredWhileRunning++;
      return status.status === 'completed' ? true : undefined;
    }, 'the 300-document job', 120_000);
    assert.ok(answeredWhileRunning >= 3, `status answered ${answeredWhileRunning} times while the model worked`);
    assert.equal((await call(`${url}/api/health`)).status, 200);
  });
});
