/**
 * The byte reader for embed answers (src/backends/embedJson.ts) against the rule it shortcuts:
 * JSON.parse of the answer's text, then each element stored into a Float32Array. Properties:
 *  - every number, printed any way JSON allows, reads as `Math.fround(JSON.parse(text))`;
 *  - a well-formed answer (any whitespace, other fields anywhere) is read, with the same
 *    vectors and usage fields as the JSON.parse path;
 *  - whatever the reader returns for a damaged answer, JSON.parse + the adapter's rule gives
 *    the same (when the reader declines, the adapters take the JSON.parse path, which gives
 *    today's errors: test/invalid-vectors.test.ts, test/vector-check.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { answerText, readOllamaEmbed, readOpenAIEmbed, vectorDoublesForTest } from '../src/backends/embedJson.js';
import { toFloat32 } from '../src/backends/vectorCheck.js';
import { formatFloat32 } from '../src/util/float32Json.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'utf8');

/** A float32 (any bit pattern but NaN) printed one of the ways a JSON writer may print it. */
const printedFloat = fc
  .tuple(fc.float({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 21 }))
  .map(([x, how, digits]) => {
    switch (how) {
      case 0:
        return formatFloat32(x); // shortest float32 (Ollama, the sim)
      case 1:
        return JSON.stringify(x); // shortest double
      case 2:
        return x.toPrecision(17).replace('+', ''); // every double digit ("1.0000000e5" style exponents without +)
      case 3:
        return x.toPrecision(digits);
      case 4:
        return x.toExponential(Math.min(digits, 20)).toUpperCase();
      case 5:
        return Object.is(x, -0) ? '-0' : Number.isInteger(x) && Math.abs(x) < 1e21 ? x.toFixed(0) : x.toFixed(Math.min(digits, 20));
      case 6:
        return `${Math.trunc(x * 1e6)}e-6`;
      case 7:
        return Math.abs(x) < 1e15 ? x.toFixed(Math.min(digits + 10, 100)) : formatFloat32(x); // long fractions: the Number() path
      default:
        return formatFloat32(x);
    }
  })
  .filter((s) => /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(s));

/** Any JSON number text: many digits, leading fraction zeros, large and tiny exponents, -0. */
const anyNumberText = fc
  .tuple(
    fc.boolean(),
    fc.oneof(fc.constant('0'), fc.stringMatching(/^[1-9]\d{0,24}$/)),
    fc.option(fc.stringMatching(/^\d{1,30}$/), { nil: undefined }),
    fc.option(fc.tuple(fc.constantFrom('e', 'E'), fc.constantFrom('', '+', '-'), fc.stringMatching(/^\d{1,3}$/)), { nil: undefined }),
  )
  .map(([neg, int, frac, exp]) => `${neg ? '-' : ''}${int}${frac === undefined ? '' : `.${frac}`}${exp === undefined ? '' : exp.join('')}`);

/**
 * Decimals at and next to the midpoint between two neighbouring float32s, where reading the
 * double one ulp off flips the float32: the double rounding JSON.parse + Float32Array does.
 */
const nearMidpoint = fc
  .tuple(fc.float({ noNaN: true, noDefaultInfinity: true, min: Math.fround(-3e38), max: Math.fround(3e38) }), fc.integer({ min: 10, max: 30 }), fc.integer({ min: -2, max: 2 }))
  .map(([x, digits, nudge]) => {
    const f = new Float32Array([x]);
    const bits = new Uint32Array(f.buffer);
    bits[0] = bits[0]! + 1;
    const mid = (x + f[0]!) / 2; // exact in a double
    const text = mid.toPrecision(digits);
    const m = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(text);
    if (!m || nudge === 0) return text.replace('+', '');
    // Move the last digit by `nudge` (as digits: no arithmetic on the value).
    const all = m[2]! + (m[3] ?? '');
    const bumped = (BigInt(all) + BigInt(nudge)).toString().padStart(all.length, '0');
    if (bumped.startsWith('-') || bumped.length !== all.length) return text.replace('+', '');
    const int = bumped.slice(0, m[2]!.length);
    const frac = bumped.slice(m[2]!.length);
    return `${m[1]}${int}${frac ? `.${frac}` : ''}${m[4] ? `e${Number(m[4])}` : ''}`;
  })
  .filter((s) => /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(s));

const numberText = fc.oneof(printedFloat, anyNumberText, nearMidpoint);

const wsText = fc.constantFrom('', '', '', ' ', '\n', '\t', '\r\n  ');

/** JSON for a value in an unused field: strings with escapes and UTF-8, nesting, literals. */
const otherValue = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.constantFrom('"\\u00e9\\n\\"x\\\\"', 'null', 'true', 'false', '[]', '{}', '[1,{"a":[null,"b"]}]', '{"embeddings":[[1]]}', '-0.5e-3', '"é€𝄞"'),
);

/** An Ollama answer with these vectors (as number texts), extra fields and whitespace. */
function ollamaText(vectors: string[][], w: () => string, extra: string[]): string {
  const list = vectors.map((v) => `[${w()}${v.map((n) => `${n}${w()}`).join(`,${w()}`)}]`).join(`${w()},${w()}`);
  const fields = [`"model"${w()}:${w()}"nomic-embed-text"`, `"embeddings"${w()}:${w()}[${w()}${list}${w()}]`, `"load_duration":${w()}123`, `"prompt_eval_count":7`, ...extra];
  return `${w()}{${w()}${fields.join(`${w()},${w()}`)}${w()}}${w()}`;
}

/** What the Ollama adapter's JSON.parse path gives: the vectors and fields, or a refusal. */
function ollamaByJsonParse(text: string, expected: number): { vectors: number[][]; promptEvalCount: unknown; loadDuration: unknown } | 'refused' {
  let parsed: { embeddings?: unknown; prompt_eval_count?: unknown; load_duration?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return 'refused';
  }
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.embeddings) || parsed.embeddings.length !== expected) return 'refused';
  const vectors = parsed.embeddings.map((v) => toFloat32(v));
  if (vectors.some((v) => typeof v === 'string')) return 'refused';
  const lengths = new Set(vectors.map((v) => (v as Float32Array).length));
  if (lengths.size !== 1) return 'refused'; // checkAnswer refuses mixed lengths
  const num = (x: unknown): number | undefined => (typeof x === 'number' ? x : undefined);
  return { vectors: vectors.map((v) => Array.from(v as Float32Array)), promptEvalCount: num(parsed.prompt_eval_count), loadDuration: num(parsed.load_duration) };
}

const sameFloats = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

test('every number reads as Math.fround(JSON.parse(text)), whichever way it is printed', () => {
  fc.assert(
    fc.property(fc.array(numberText, { minLength: 1, maxLength: 40 }), (texts) => {
      const answer = readOllamaEmbed(bytes(`{"embeddings":[[${texts.join(',')}]]}`), 1);
      assert.ok(answer, `refused ${texts.join(',')}`);
      const want = texts.map((t) => Math.fround(JSON.parse(t) as number));
      const got = Array.from(answer.vectors[0]!);
      assert.ok(sameFloats(got, want), `${texts.join(',')}: ${got.join(',')} vs ${want.join(',')}`);
    }),
    { numRuns: 3000 },
  );
});

test('the element loop computes the double JSON.parse gives, before the float32 store', () => {
  fc.assert(
    fc.property(fc.array(numberText, { minLength: 1, maxLength: 40 }), (texts) => {
      const got = vectorDoublesForTest(bytes(`[${texts.join(',')}]`));
      assert.ok(got, `refused ${texts.join(',')}`);
      assert.ok(sameFloats(Array.from(got), texts.map((t) => JSON.parse(t) as number)), texts.join(','));
    }),
    { numRuns: 3000 },
  );
});

test('edge numbers: -0, zeros with exponents, beyond 2^53, 23+ fraction digits, huge and tiny exponents', () => {
  const texts = [
    '-0', '0', '-0.0', '0e500', '-0E-9', '0.0000000000000000000000000', '9007199254740993', '9007199254740992.5', '123456789012345678901234567890',
    '0.00000000000000000000001234', '1e22', '1e23', '1.7976931348623157e308', '1e309', '-1e400', '1e-400', '4.9e-324', '1.401298464324817e-45',
    '7.006492321624085e-46', '3.4028235677973366e38', '3.4028236e38', '1.00000005960464477539062', '1.0000000596046448', '0.1', '-3.4e-39',
    '16777217', '1E+2', '2.5e-10', '12345678901234567e-20',
  ];
  const answer = readOllamaEmbed(bytes(`{"embeddings":[[${texts.join(',')}]]}`), 1);
  assert.ok(answer);
  assert.ok(sameFloats(Array.from(answer.vectors[0]!), texts.map((t) => Math.fround(JSON.parse(t) as number))));
  assert.ok(Object.is(answer.vectors[0]![0], -0));
});

test('well-formed answers are read, with the same vectors and fields as JSON.parse, whatever the whitespace and other fields', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }).chain((dims) => fc.array(fc.array(numberText, { minLength: dims, maxLength: dims }), { minLength: 1, maxLength: 5 })),
      fc.array(wsText, { minLength: 1, maxLength: 10 }),
      fc.array(fc.tuple(fc.constantFrom('total_duration', 'x', '', 'embeddings2', 'prompt_eval', '__proto__', 'é'), otherValue), { maxLength: 3 }),
      (vectors, spaces, extra) => {
        let i = 0;
        const w = (): string => spaces[i++ % spaces.length]!;
        const text = ollamaText(vectors, w, extra.map(([k, v]) => `${JSON.stringify(k)}:${v}`));
        const want = ollamaByJsonParse(text, vectors.length);
        assert.notEqual(want, 'refused');
        const got = readOllamaEmbed(bytes(text), vectors.length);
        assert.ok(got, `refused ${text}`);
        if (want === 'refused') return;
        assert.ok(got.vectors.every((v, j) => sameFloats(Array.from(v), want.vectors[j]!)));
        assert.equal(got.promptEvalCount, want.promptEvalCount);
        assert.equal(got.loadDuration, want.loadDuration);
      },
    ),
    { numRuns: 1500 },
  );
});

/** Damage to an answer's text: a byte removed, inserted or replaced, a cut, a repeated field. */
const damage = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.nat(), fc.constantFrom(...',[]{}":.-+eE0123456789 \\nul\tx\u0001é'.split(''), 'null', 'true', '"NaN"', '1e400', '[]', ',"embeddings":[[1]]', ',"prompt_eval_count":"7"', ',"load_duration":-1', '\uFEFF'));

function damaged(text: string, [how, at, piece]: [number, number, string]): string {
  const p = at % (text.length + 1);
  if (how === 0) return text.slice(0, p) + text.slice(p + 1);
  if (how === 1 || how === 4) return text.slice(0, p) + piece + text.slice(p);
  if (how === 2) return text.slice(0, p) + piece + text.slice(p + 1);
  if (how === 3) return text.slice(0, p);
  return piece === '\uFEFF' ? piece + text : text.replace(/}\s*$/, `${piece.startsWith(',') ? piece : ',"z":1'}}`);
}

test('damaged answers: whatever the reader returns, JSON.parse and the vector rule give the same; otherwise it declines', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }).chain((dims) => fc.array(fc.array(numberText, { minLength: dims, maxLength: dims }), { minLength: 1, maxLength: 4 })),
      fc.array(damage, { minLength: 1, maxLength: 3 }),
      fc.integer({ min: -1, max: 1 }),
      (vectors, damages, countDelta) => {
        const text = damages.reduce(damaged, ollamaText(vectors, () => '', []));
        const expected = Math.max(0, vectors.length + countDelta);
        const got = readOllamaEmbed(bytes(text), expected);
        if (got === undefined) return; // the adapter takes the JSON.parse path
        // The fallback decodes like undici's text(): a leading BOM is skipped.
        const want = ollamaByJsonParse(answerText(bytes(text)), expected);
        assert.notEqual(want, 'refused', `read what JSON.parse refuses: ${JSON.stringify(text)}`);
        if (want === 'refused') return;
        assert.ok(got.vectors.every((v, j) => sameFloats(Array.from(v), want.vectors[j]!)), text);
        assert.equal(got.promptEvalCount, want.promptEvalCount, text);
        assert.equal(got.loadDuration, want.loadDuration, text);
      },
    ),
    { numRuns: 4000 },
  );
});

test('declined: not JSON, another count, non-numbers, empty or mixed-length vectors, repeated or escaped keys, deep nesting', () => {
  const declined = [
    '', 'null', '[]', '{}', '{"embeddings":[[1,'," {\"embeddings\":[[1]]} x", '{"embeddings":[[1]]', '{"embeddings":[[1,]]}', '{"embeddings":[[01]]}', '{"embeddings":[[1.]]}',
    '{"embeddings":[[.5]]}', '{"embeddings":[[+1]]}', '{"embeddings":[[1e]]}', '{"embeddings":[[NaN]]}', '{"embeddings":[[Infinity]]}', '{"embeddings":[[null]]}',
    '{"embeddings":[["1"]]}', '{"embeddings":[[true]]}', '{"embeddings":[[]]}', '{"embeddings":[]}', '{"embeddings":null}', '{"embeddings":[[1],[1,2]]}',
    '{"embeddings":[[1]],"embeddings":[[2]]}', '{"embe\\u0064dings":[[1]]}', '{"embeddings":[[1]],"x":"\u0001"}', '{"embeddings":[[1]],"x":"\u001f"}', '{"embeddings":[[1]],"x":"\\x"}',
    `{"embeddings":[[1]],"x":${'['.repeat(100)}${']'.repeat(100)}}`, '{"embeddings":[[1]],}', '{"embeddings":[[1]] "x":1}', '{"embeddings":[[1]],"x":tru}',
  ];
  for (const text of declined) assert.equal(readOllamaEmbed(bytes(text), 1), undefined, text);
  assert.equal(readOllamaEmbed(bytes('{"embeddings":[[1],[2]]}'), 1), undefined, 'two vectors for one input');
  assert.equal(readOllamaEmbed(bytes('{"embeddings":[[1]]}'), 2), undefined, 'one vector for two inputs');
  // Non-number usage fields are JSON that JSON.parse reads too; countField ignores them.
  assert.deepEqual(readOllamaEmbed(bytes('{"embeddings":[[1]],"prompt_eval_count":"7","load_duration":null}'), 1)?.promptEvalCount, undefined);
  assert.equal(readOllamaEmbed(bytes('\uFEFF{"embeddings":[[1]],"prompt_eval_count":3}'), 1)?.promptEvalCount, 3);
});

/** What the OpenAI adapter's JSON.parse path gives (vectorsOf, float lists only). */
function openaiByJsonParse(text: string, expected: number): { vectors: number[][]; promptTokens: unknown } | 'refused' {
  let parsed: { data?: unknown; usage?: { prompt_tokens?: unknown } };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    return 'refused';
  }
  if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.data) || parsed.data.length !== expected) return 'refused';
  const vectors = new Array<number[] | undefined>(expected);
  for (const [position, item] of parsed.data.entries()) {
    const { index, embedding } = (item ?? {}) as { index?: unknown; embedding?: unknown };
    const at = typeof index === 'number' && Number.isInteger(index) ? index : position;
    if (at < 0 || at >= expected || vectors[at] !== undefined) return 'refused';
    const v = toFloat32(embedding);
    if (typeof v === 'string') return 'refused';
    vectors[at] = Array.from(v);
  }
  if (new Set(vectors.map((v) => v!.length)).size !== 1) return 'refused';
  const tokens = parsed.usage?.prompt_tokens;
  return { vectors: vectors as number[][], promptTokens: typeof tokens === 'number' ? tokens : undefined };
}

test('OpenAI-compatible answers: same vectors in index order and prompt_tokens as JSON.parse; damaged ones agree or are declined', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }).chain((dims) => fc.array(fc.array(numberText, { minLength: dims, maxLength: dims }), { minLength: 1, maxLength: 4 })),
      fc.boolean(),
      fc.constantFrom('{"prompt_tokens":5,"total_tokens":5}', '{"total_tokens":5}', 'null', '3', '{"prompt_tokens":"5"}'),
      fc.array(damage, { maxLength: 2 }),
      (vectors, shuffle, usage, damages) => {
        const order = vectors.map((_, i) => i);
        if (shuffle) order.reverse();
        const items = order.map((i) => `{"object":"embedding","index":${i},"embedding":[${vectors[i]!.join(',')}]}`);
        const clean = `{"object":"list","data":[${items.join(',')}],"model":"m","usage":${usage}}`;
        const text = damages.reduce(damaged, clean);
        const got = readOpenAIEmbed(bytes(text), vectors.length);
        if (damages.length === 0) assert.ok(got, `refused ${text}`);
        if (got === undefined) return;
        const want = openaiByJsonParse(answerText(bytes(text)), vectors.length);
        assert.notEqual(want, 'refused', `read what JSON.parse refuses: ${text}`);
        if (want === 'refused') return;
        assert.ok(got.vectors.every((v, j) => sameFloats(Array.from(v), want.vectors[j]!)), text);
        assert.equal(got.promptTokens, want.promptTokens, text);
      },
    ),
    { numRuns: 3000 },
  );
  // Positions stand in for missing or non-integer indices; repeated indices and base64 go to JSON.parse.
  const two = readOpenAIEmbed(bytes('{"data":[{"embedding":[1]},{"index":0.5,"embedding":[2]}]}'), 2);
  assert.deepEqual(two?.vectors.map((v) => Array.from(v)), [[1], [2]]);
  assert.equal(readOpenAIEmbed(bytes('{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}'), 2), undefined);
  assert.equal(readOpenAIEmbed(bytes('{"data":[{"index":0,"embedding":"AACAPw=="}]}'), 1), undefined);
});
