/** OpenAI Batch API groundwork: input-file validation (errors name the line) and the Batch / File objects. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_INPUT_LINES, validateInputFile } from '../src/openaiBatch/inputFile.js';
import { batchObject, fileObject, outputLine } from '../src/openaiBatch/objects.js';
import { partsFromRefs, planGroups, splitGroups } from '../src/openaiBatch/plan.js';
import type { BatchLineError, InputFileVerdict } from '../src/openaiBatch/inputFile.js';

function errorsOf(verdict: InputFileVerdict): readonly BatchLineError[] {
  assert.ok(!verdict.ok, 'the file is refused');
  return verdict.errors;
}

const chat = (id: string, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'llama3.2', messages: [{ role: 'user', content: id }] }, ...extra });

test('a valid file gives its requests in order, models per line, blank lines skipped', () => {
  const content = `${chat('a')}\n\n${chat('b', { body: { model: 'other', messages: [{ role: 'user', content: 'x' }] } })}\r\n`;
  const verdict = validateInputFile(content, '/v1/chat/completions');
  assert.ok(verdict.ok);
  assert.deepEqual(verdict.requests.map((r) => [r.line, r.customId, r.model]), [[1, 'a', 'llama3.2'], [3, 'b', 'other']]);
});

test('every kind of bad line is named with its line number and param', () => {
  const lines = [
    chat('ok'),
    '{not json',
    '[1]',
    JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: {} }),
    chat('ok'),
    chat('m', { method: 'GET' }),
    chat('u', { url: '/v1/images' }),
    chat('e', { url: '/v1/embeddings' }),
    chat('b', { body: { model: 'x', messages: [] } }),
    chat('s', { body: { model: 'x', messages: [{ role: 'user', content: 'y' }], stream: true } }),
  ];
  const verdict = validateInputFile(lines.join('\n'), '/v1/chat/completions');
  assert.ok(!verdict.ok);
  assert.deepEqual(verdict.errors.map((e) => [e.line, e.code, e.param]), [
    [2, 'invalid_json', null],
    [3, 'invalid_request', null],
    [4, 'missing_custom_id', 'custom_id'],
    [5, 'duplicate_custom_id', 'custom_id'],
    [6, 'invalid_method', 'method'],
    [7, 'invalid_url', 'url'],
    [8, 'mismatched_url', 'url'],
    [9, 'invalid_body', 'body.messages'],
    [10, 'invalid_body', 'body.stream'],
  ]);
  assert.ok(verdict.errors.every((e) => e.message.startsWith(`Line ${e.line}: `)));
});

test('embeddings and completions bodies are checked as the sync routes check them; bounds', () => {
  const emb = (id: string, body: unknown): string => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/embeddings', body });
  const verdict = validateInputFile([emb('a', { model: 'm', input: ['x', 'y'] }), emb('b', { model: 'm', input: [1, 2] }), emb('c', { model: 'm', input: 'x', encoding_format: 'hex' })].join('\n'), '/v1/embeddings');
  assert.ok(!verdict.ok);
  assert.deepEqual(verdict.errors.map((e) => [e.line, e.param]), [[2, 'body.input'], [3, 'body.encoding_format']]);
  const completion = JSON.stringify({ custom_id: 'c', method: 'POST', url: '/v1/completions', body: { model: 'm', prompt: 'x', n: 2 } });
  assert.deepEqual(errorsOf(validateInputFile(completion, '/v1/completions')).map((e) => e.param), ['body.n']);
  assert.equal(errorsOf(validateInputFile('\n\n', '/v1/completions'))[0]?.code, 'empty_file');
  const many = Array.from({ length: MAX_INPUT_LINES + 1 }, (_, i) => JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/completions', body: { model: 'm', prompt: 'p' } })).join('\n');
  assert.equal(errorsOf(validateInputFile(many, '/v1/completions'))[0]?.code, 'too_many_requests');
  assert.ok(validateInputFile(many.slice(0, many.lastIndexOf('\n')), '/v1/completions').ok, `${MAX_INPUT_LINES} lines are accepted`);
});

test('the Batch and File objects carry OpenAI field names and types', () => {
  const batch = batchObject({
    id: 'batch_1', owner: 'k', endpoint: '/v1/chat/completions', inputFileId: 'file-1', completionWindow: '24h', status: 'in_progress',
    metadata: { a: 'b' }, errors: [], outputFileId: null, errorFileId: null, times: { created: 1_711_471_533_999, in_progress: 1_711_471_538_000 },
    counts: { total: 2, completed: 1, failed: 0 },
  });
  assert.deepEqual(Object.keys(batch), [
    'id', 'object', 'endpoint', 'errors', 'input_file_id', 'completion_window', 'status', 'output_file_id', 'error_file_id', 'created_at', 'in_progress_at',
    'expires_at', 'finalizing_at', 'completed_at', 'failed_at', 'expired_at', 'cancelling_at', 'cancelled_at', 'request_counts', 'metadata',
  ]);
  assert.equal(batch.created_at, 1_711_471_533);
  assert.equal(batch.completed_at, null);
  assert.equal(batch.errors, null);
  assert.deepEqual(fileObject({ id: 'file-1', owner: 'k', bytes: 10, createdAt: 2_000, filename: 'in.jsonl', purpose: 'batch' }), {
    id: 'file-1', object: 'file', bytes: 10, created_at: 2, filename: 'in.jsonl', purpose: 'batch', status: 'processed', status_details: null,
  });
  assert.deepEqual(JSON.parse(outputLine('batch_req_1', 'a', { statusCode: 200, requestId: 'r1', body: { ok: true } }, null)), {
    id: 'batch_req_1', custom_id: 'a', response: { status_code: 200, request_id: 'r1', body: { ok: true } }, error: null,
  });
});

test('groups over the job size are cut at line boundaries; the finaliser finds the same parts from the stored refs whatever the size is then', () => {
  const file = Buffer.from(['a:2', 'b:2', 'c:1', 'd:3', 'e:1'].map((spec) => {
    const [id, n] = spec.split(':');
    return JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/embeddings', body: { model: 'm', input: Array.from({ length: Number(n) }, (_, i) => `${id}${i}`) } });
  }).join('\n'));
  const verdict = validateInputFile(file, '/v1/embeddings');
  assert.ok(verdict.ok);
  const groups = planGroups('/v1/embeddings', verdict.requests);
  const parts = splitGroups(groups, 3);
  assert.ok(Array.isArray(parts));
  assert.deepEqual(parts.map((p) => p.lines.map((l) => l.line.customId)), [['a'], ['b', 'c'], ['d'], ['e']]);
  assert.deepEqual(parts.map((p) => p.documents), [['a0', 'a1'], ['b0', 'b1', 'c0'], ['d0', 'd1', 'd2'], ['e0']]);
  assert.deepEqual(parts[1]!.lines.map((l) => [l.start, l.end]), [[0, 2], [2, 3]], 'item ranges rebased to the part');
  assert.equal(new Set(parts.map((p) => p.key)).size, 4, 'distinct keys');
  assert.equal(parts[0]!.key, groups[0]!.key, 'the first part keeps the group key');
  // Refs as the batch stores them, read back with no knowledge of the size they were cut at.
  const refs = parts.map((p, i) => ({ group: p.key, lines: p.lines.length, jobId: `job${i}` }));
  const found = partsFromRefs(groups[0]!, refs);
  assert.deepEqual(found.map((f) => f.ref?.jobId), ['job0', 'job1', 'job2', 'job3']);
  assert.deepEqual(found.map((f) => f.part.documents), parts.map((p) => p.documents));
  // A ref lost: its lines come back without one (they fail as expired), the others still match.
  const gap = partsFromRefs(groups[0]!, [refs[0]!, refs[2]!, refs[3]!]);
  assert.deepEqual(gap.map((f) => [f.ref?.jobId ?? null, f.part.lines.map((l) => l.line.customId)]), [['job0', ['a']], [null, ['b', 'c']], ['job2', ['d']], ['job3', ['e']]]);
  const single = splitGroups(groups, 2);
  assert.ok(!Array.isArray(single) && single.tooBig.customId === 'd' && single.items === 3, 'a line alone over the size');
});
