import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { float32ArrayJsonMaxBytes, float32ArrayToJson, formatFloat32, writeFloat32ArrayJson } from '../src/util/float32Json.js';
import { mulberry32 } from '../src/util/mulberry32.js';


const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function fromBits(bits: number): number {
  u32[0] = bits;
  return f32[0]!;
}
function toBits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The read-back every JSON client performs. */
function roundTrips(s: string, x: number): boolean {
  return Math.fround(JSON.parse(s) as number) === x;
}

/** Significant digits of a decimal string: value = t * 10^exp, t without trailing zeros. */
function decompose(s: string): { t: number; exp: number; nd: number } {
  const body = s.startsWith('-') ? s.slice(1) : s;
  const ePos = body.indexOf('e');
  const mant = ePos < 0 ? body : body.slice(0, ePos);
  let exp = ePos < 0 ? 0 : Number(body.slice(ePos + 1));
  const dot = mant.indexOf('.');
  let digits = mant;
  if (dot >= 0) {
    digits = mant.slice(0, dot) + mant.slice(dot + 1);
    exp -= mant.length - dot - 1;
  }
  digits = digits.replace(/^0+/, '');
  const stripped = digits.replace(/0+$/, '');
  exp += digits.length - stripped.length;
  return { t: Number(stripped), exp, nd: stripped.length };
}

/** Reference length: the first p in 1..9 for which the nearest p-digit decimal reads back. */
function referenceLength(x: number): number {
  for (let p = 1; p <= 9; p++) if (roundTrips(x.toPrecision(p), x)) return p;
  throw new Error(`no 9-digit form for ${x}`);
}

/**
 * Full check of `formatFloat32(x)` for a positive finite float32 against slow references:
 * it reads back; it is no longer than the reference; no decimal with one digit fewer reads
 * back (checking the two neighbours of the output on the coarser grid suffices, because
 * read-back is monotonic); and it is the closest candidate of its length.
 */
function checkAgainstReference(x: number): void {
  const s = formatFloat32(x);
  const ctx = `x=${x} (bits 0x${toBits(x).toString(16)}) -> ${s}`;
  assert.ok(roundTrips(s, x), `round trip: ${ctx}`);
  assert.equal(String(Number(s)), s, `Number#toString layout: ${ctx}`);
  const { t, exp, nd } = decompose(s);
  assert.ok(nd >= 1 && nd <= 9, `digit count: ${ctx}`);
  const refLen = referenceLength(x);
  // toPrecision(refLen) is the nearest refLen-digit decimal; we may be shorter still when
  // the nearest p-digit decimal fails but the one on the other side of x reads back.
  assert.ok(nd <= refLen, `longer than reference ${refLen}: ${ctx}`);
  if (nd > 1) {
    const coarse = Math.floor(t / 10);
    assert.ok(!roundTrips(`${coarse}e${exp + 1}`, x), `shorter ${coarse}e${exp + 1} works: ${ctx}`);
    assert.ok(!roundTrips(`${coarse + 1}e${exp + 1}`, x), `shorter ${coarse + 1}e${exp + 1} works: ${ctx}`);
  }
  // Closest of its length: toPrecision(nd) is the nearest nd-digit decimal (ties away from
  // zero, our documented tie rule). If it reads back we must print it; if not, the valid
  // candidates all lie on the other side and we must print the one adjacent to x, whose
  // neighbour towards x is then exactly that nearest decimal.
  const nearest = x.toPrecision(nd);
  if (roundTrips(nearest, x)) {
    assert.equal(Number(s), Number(nearest), `not the closest (${nearest}): ${ctx}`);
  } else {
    const above = Number(s) > x;
    const towards = above ? t - 1 : t + 1;
    const y = above && towards < 10 ** (nd - 1) ? `${10 ** nd - 1}e${exp - 1}` : `${towards}e${exp}`;
    assert.equal(Number(y), Number(nearest), `not adjacent to x (nearest ${nearest}): ${ctx}`);
  }
  assert.equal(formatFloat32(-x), '-' + s, `sign: ${ctx}`);
}

/** Float32 neighbours: `steps` ulps away (negative = down), for positive finite x. */
function ulpsAway(x: number, steps: number): number {
  return fromBits(toBits(x) + steps);
}

test('edge cases print as expected', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [-0, '0'],
    [2 ** -149, '1e-45'],
    [-(2 ** -149), '-1e-45'],
    [2 ** -126, '1.1754944e-38'],
    [2 ** -126 - 2 ** -149, '1.1754942e-38'],
    [3.4028234663852886e38, '3.4028235e+38'],
    [-3.4028234663852886e38, '-3.4028235e+38'],
    [Math.fround(0.1), '0.1'],
    [Math.fround(1 / 3), '0.33333334'],
    [Math.fround(2 / 3), '0.6666667'],
    [1, '1'],
    [-1, '-1'],
    [0.5, '0.5'],
    [16777216, '16777216'],
    [2 ** 30, '1073741800'],
    [Math.fround(123456789), '123456790'],
    [Math.fround(1e-7), '1e-7'],
    [Math.fround(1.5e-7), '1.5e-7'],
    [Math.fround(1e-6), '0.000001'],
    [Math.fround(1e20), '100000000000000000000'],
    [Math.fround(1e21), '1e+21'],
    [Math.fround(0.05), '0.05'],
    // Exact ties (65537/32 is halfway between 2048.0312 and 2048.0313; 87/512 between
    // 0.16992187 and 0.16992188, both candidates inside the interval): away from zero.
    [2048.03125, '2048.0313'],
    [87 / 512, '0.16992188'],
    [-87 / 512, '-0.16992188'],
    // Midpoints that are short decimals. 33554450 is the midpoint between 33554448 (even
    // mantissa) and 33554452, so it reads back as 33554448 only; 8388609's midpoints are
    // 8388608.5 and 8388609.5.
    [33554448, '33554450'],
    [33554452, '33554452'],
    [8388609, '8388609'],
    [2 ** 30 + 128, '1073742000'],
  ];
  for (const [x, expected] of cases) {
    assert.equal(formatFloat32(x), expected, `formatFloat32(${x})`);
    if (x !== 0) assert.ok(roundTrips(expected, Math.fround(x)));
  }
});

test('non-finite values become null, doubles are rounded to float32 first', () => {
  assert.equal(formatFloat32(NaN), 'null');
  assert.equal(formatFloat32(Infinity), 'null');
  assert.equal(formatFloat32(-Infinity), 'null');
  assert.equal(formatFloat32(1e39), 'null'); // overflows float32
  assert.equal(formatFloat32(0.1), '0.1'); // the double 0.1 becomes float32 0.1
  assert.equal(formatFloat32(1e-46), '0'); // underflows float32
});

test('powers of ten and two, digit-count boundaries, subnormals, ties (vs reference)', () => {
  const xs: number[] = [];
  for (let k = -45; k <= 38; k++) {
    const p = Math.fround(Number(`1e${k}`));
    if (p === 0 || !Number.isFinite(p)) continue;
    // A power of ten lies inside its float's interval, so it prints as the power itself.
    assert.equal(formatFloat32(p), String(Number(`1e${k}`)), `10^${k}`);
    for (const base of [p, Math.fround(Number(`9.99999e${k}`)), Math.fround(Number(`1.00001e${k}`))]) {
      for (let d = -4; d <= 4; d++) {
        const y = ulpsAway(base, d);
        if (y > 0 && Number.isFinite(y)) xs.push(y);
      }
    }
  }
  for (let e = -149; e <= 127; e++) {
    const p = 2 ** e;
    xs.push(p, ulpsAway(p, 1));
    if (e > -149) xs.push(ulpsAway(p, -1));
  }
  for (let bits = 1; bits <= 3000; bits++) xs.push(fromBits(bits)); // smallest subnormals
  for (let bits = 0x7fffff; bits > 0x7fffff - 3000; bits--) xs.push(fromBits(bits)); // largest
  for (let bits = 0x7f7fffff; bits > 0x7f7fffff - 3000; bits--) xs.push(fromBits(bits)); // near max
  for (let i = 0; i < 2048; i++) xs.push(2048 + i / 32); // many exact ties
  // Short decimals exactly on midpoints (large integers) and exact ties (few-bit floats).
  for (let i = 1; i < 4000; i++) {
    xs.push(8388608 + i, 16777216 + 2 * i, 33554432 + 4 * i, 2 ** 30 + 128 * i, 2 ** 33 + 1024 * i);
    xs.push(2 ** 21 + i / 4, 0.125 + i / 2 ** 15, 0.25 + i / 2 ** 14);
  }
  for (const x of xs) checkAgainstReference(x);
});

test('shortest and closest vs reference on a large random sample', () => {
  const next = mulberry32(0x5eed);
  for (let i = 0; i < 150_000; i++) {
    const x = Math.abs(fromBits(next()));
    if (x === 0 || !Number.isFinite(x)) continue;
    checkAgainstReference(x);
  }
  // Embedding-like values: uniform in (-0.1, 0.1), the gateway's typical payload.
  for (let i = 0; i < 150_000; i++) {
    const x = Math.abs(Math.fround((next() / 2 ** 32 - 0.5) * 0.2));
    if (x !== 0) checkAgainstReference(x);
  }
});

test('round trip for 1.5 million random float32 bit patterns over all exponents', () => {
  const next = mulberry32(42);
  let checked = 0;
  for (let i = 0; i < 1_500_000; i++) {
    const bits = next();
    const x = fromBits(bits);
    const s = formatFloat32(x);
    if (!Number.isFinite(x)) {
      assert.equal(s, 'null');
      continue;
    }
    const back = Math.fround(JSON.parse(s) as number);
    if (back !== x || decompose(s).nd > 9) {
      assert.fail(`x=${x} (bits 0x${bits.toString(16)}) -> ${s} -> ${back}`);
    }
    checked++;
  }
  assert.ok(checked > 1_490_000);
});

test('float32ArrayToJson matches formatFloat32 and parses back to the same floats', () => {
  const next = mulberry32(7);
  const bitsOf = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
  for (let round = 0; round < 200; round++) {
    const len = round === 0 ? 0 : 1 + (next() % 1100);
    const v = new Float32Array(len);
    const bits = bitsOf(v);
    for (let i = 0; i < len; i++) {
      const kind = next() % 4;
      if (kind === 0) bits[i] = next(); // any bit pattern, incl. NaN, Infinity, subnormals
      else if (kind === 1) v[i] = (next() / 2 ** 32 - 0.5) * 0.2; // embedding-like
      else if (kind === 2) v[i] = (next() % 2001) - 1000; // integers
      else v[i] = [0, -0, 1e-7, -1e-6, 1e21, -1e38, 2048.03125, NaN, -Infinity][next() % 9]!;
    }
    const json = float32ArrayToJson(v);
    assert.equal(json, '[' + Array.from(v, formatFloat32).join(',') + ']');
    const parsed = JSON.parse(json) as (number | null)[];
    assert.equal(parsed.length, len);
    for (let i = 0; i < len; i++) {
      const x = v[i]!;
      if (Number.isFinite(x)) assert.equal(Math.fround(parsed[i] as number), x === 0 ? 0 : x);
      else assert.equal(parsed[i], null);
    }
  }
});

test('float32ArrayToJson: empty, views with an offset, large vectors, -0 and non-finite', () => {
  assert.equal(float32ArrayToJson(new Float32Array(0)), '[]');
  assert.equal(float32ArrayToJson(new Float32Array([-0, 0, NaN, Infinity, -Infinity])), '[0,0,null,null,null]');
  assert.equal(float32ArrayToJson(new Float32Array([0.1, -2.5e-7, 3])), '[0.1,-2.5e-7,3]');
  const backing = new Float32Array([9, 0.25, -0.5, 1 / 3, 7]);
  assert.equal(float32ArrayToJson(backing.subarray(1, 4)), '[0.25,-0.5,0.33333334]');
  // Larger than the retained output buffer, then small again: results stay independent.
  const big = new Float32Array(200_000);
  for (let i = 0; i < big.length; i++) big[i] = -(i + 0.5) / 3;
  const bigJson = float32ArrayToJson(big);
  const small = float32ArrayToJson(new Float32Array([1, 2]));
  assert.equal(small, '[1,2]');
  const parsed = JSON.parse(bigJson) as number[];
  assert.equal(parsed.length, big.length);
  for (let i = 0; i < big.length; i++) assert.equal(Math.fround(parsed[i]!), big[i]);
});

/**
 * Float32 bit patterns for the property tests: any pattern; embedding-like values; and edges
 * (every exponent with the smallest, largest and a few special mantissas, either sign; powers
 * of ten and their neighbours; the boundaries of the `0.000ddd` layout at 1e-6 and 1).
 */
const anyBits = fc.integer({ min: 0, max: 0xffffffff });
const embeddingBits = fc.float({ min: -1, max: 1, noNaN: true }).map(toBits);
const edgeBits = fc.oneof(
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 1, 2, 3, 0x400000, 0x7ffffd, 0x7ffffe, 0x7fffff), fc.boolean())
    .map(([e, frac, negative]) => ((negative ? 0x80000000 : 0) | (e << 23) | frac) >>> 0),
  fc
    .tuple(fc.integer({ min: -45, max: 38 }), fc.integer({ min: -3, max: 3 }), fc.boolean())
    .map(([k, steps, negative]) => (toBits(Math.fround(Number(`1e${k}`))) + steps + (negative ? 0x80000000 : 0)) >>> 0),
);
const floatBits = fc.oneof(anyBits, embeddingBits, edgeBits);

test('property: every bit pattern prints as the shortest, closest decimal that reads back (fast-check)', () => {
  fc.assert(
    fc.property(floatBits, (bits) => {
      const x = fromBits(bits);
      if (!Number.isFinite(x)) assert.equal(formatFloat32(x), 'null');
      else if (x === 0) assert.equal(formatFloat32(x), '0');
      else checkAgainstReference(Math.abs(x)); // checks -x too
    }),
    { numRuns: 30_000 },
  );
});

test('property: the array writer writes formatFloat32 of each element, from pos, and no byte outside (fast-check)', () => {
  fc.assert(
    fc.property(fc.array(floatBits, { maxLength: 60 }), fc.integer({ min: 0, max: 9 }), (bitsList, pos) => {
      const v = new Float32Array(bitsList.length);
      new Uint32Array(v.buffer).set(bitsList);
      // Bytes before pos belong to the caller (the common layout writes a few bytes to the
      // left of a number before it writes its sign and separator): they must survive.
      const buf = Buffer.alloc(pos + float32ArrayJsonMaxBytes(v.length) + 16, 0xaa);
      const end = writeFloat32ArrayJson(v, buf, pos);
      assert.equal(buf.toString('latin1', pos, end), '[' + Array.from(v, formatFloat32).join(',') + ']');
      assert.ok(end - pos <= float32ArrayJsonMaxBytes(v.length));
      for (let i = 0; i < pos; i++) assert.equal(buf[i], 0xaa, `byte ${i} before pos ${pos}`);
      for (let i = end; i < buf.length; i++) assert.equal(buf[i], 0xaa, `byte ${i} after the end ${end}`);
    }),
    { numRuns: 5_000 },
  );
});
