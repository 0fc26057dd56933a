/**
 * Shortest round-trip JSON formatting for float32 values (embedding vectors).
 *
 * An embedding response can hold 10,000 vectors of 768-1024 floats, i.e. 7-10 million
 * numbers, so both the size of the text and the cost per number matter. `String(x)` prints
 * the shortest form of the *double* `x`, which for a float32 typically needs 16-17 digits;
 * a float32 only ever needs at most 9. This module prints, for every float32 `x`, the
 * decimal with the fewest significant digits that reads back to `x`, where "reads back"
 * means exactly what a JavaScript client does: `Math.fround(JSON.parse(text)) === x`.
 * Among several shortest candidates, the one closest to `x` is printed.
 *
 * Output conventions (all valid JSON numbers):
 *  - the digits are laid out like `Number.prototype.toString` would lay them out (fixed
 *    notation for 1e-7 <= |x| < 1e21, otherwise `1.5e-7` / `3.4028235e+38`), so values whose
 *    shortest float32 and double forms agree print exactly like `String(x)`;
 *  - `0` and `-0` both print as `0` (like `JSON.stringify(-0)`; the sign of zero carries no
 *    information for an embedding, and `0` is one byte shorter);
 *  - `NaN`, `Infinity` and `-Infinity` print as `null` (like `JSON.stringify`), because
 *    JSON has no representation for them.
 *
 * Algorithm (why it is both fast and exact):
 *  The float32 `x` owns the interval between the midpoints to its neighbours,
 *  `[x - ulp/2, x + ulp/2]` (only a quarter ulp below a power of two). The midpoints have
 *  at most 25 significant bits, so they are exact doubles. We scale `x` and both midpoints
 *  by 10^-k so that `x` lands in [1e8, 2e9). A decimal is then a point of the grid
 *  `10^r * Z` for some r >= 0, the shortest output is a point of the coarsest grid that
 *  still has a point inside the interval (at r = 0 there are always at least five), and of
 *  those points we print the one closest to `x`. No big integers, no 64-bit products.
 *
 *  Scaling rounds at most twice (relative error <= 2^-52 on values below 2^31: absolute
 *  error < 2^-20). Every decision (is this grid point inside? is it closer than its
 *  neighbour?) is taken only when its margin exceeds `EPS = 2^-16`, so it is the decision
 *  exact arithmetic would take. Thinner margins (about 1 in 30,000 random floats) go to a
 *  slow path that literally tries `toPrecision(p)` for p = 1..9 plus the neighbour on the
 *  other side of `x`, checking the read-back with `Math.fround(Number(s))`: correct by
 *  construction, ~2 us, and rare.
 *
 *  Margins that are exactly zero are not rare for some inputs, so the fast path settles
 *  them whenever it can prove the zero is exact (see `isExactly` and the `w` computation):
 *  - a short decimal exactly on a midpoint (large integers: every x in [2^23, 2^24), a fifth
 *    of those in [2^30, 2^34)). Read back, it gives exactly the midpoint, which
 *    `Math.fround` rounds to the even neighbour: it belongs to `x` iff `x`'s mantissa is even;
 *  - exact ties between two shortest candidates, which exist for floats with a short binary
 *    expansion (2048.03125 = 65537/32 is halfway between 2048.0312 and 2048.0313, both
 *    inside its interval; so are values converted from bfloat16 in [0.25, 0.5)). They are
 *    resolved like `toPrecision` (and the slow path) resolves them: half away from zero.
 *
 *  Reading back goes decimal -> double -> float32, i.e. it rounds twice, which can differ
 *  from rounding straight to float32 only for decimals within half a double ulp (relative
 *  2^-53; scaled: < 2^-22) of a midpoint but not on it. Such decimals are inside the `EPS`
 *  band, so the fast path never meets them, and the slow path uses the real read-back.
 *
 *  In practice the search starts one or two grid levels up (`startLevel`: the scaling
 *  absorbs them, and the margin shrinks by the same factor), so the level loop mostly runs
 *  once or twice.
 *
 * Speed (a 10,000 x 768 download is 7.7 million numbers; measured in bench/float32Json.ts):
 * everything is written as ASCII bytes into the caller's buffer (no string per number), the
 * digit search runs inline in the array loop (a separate function was too large for the JIT to
 * inline, and every call boxed its double argument), and the usual `0.000ddd` layout is
 * written four digits per store from a table, the sign without a branch. Any change here is
 * checked against the previous build on every float32 bit pattern by
 * bench/float32JsonCompare.ts (byte-identical output).
 *
 * @module
 */

/** Scratch views used to read the bit pattern of a single float32. */
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/**
 * Decision margin in scaled units (see module doc). Scaled values carry an absolute error
 * below 2^-20 (plus < 2^-22 for double rounding on read-back); 2^-16 leaves a 16x margin
 * while sending only ~3e-5 of random inputs to the slow path (measured).
 */
const EPS = 2 ** -16;

/** Exact powers of ten 10^0..10^22 (all exactly representable as doubles). */
const POW10 = new Float64Array(23);
for (let i = 0, p = 1; i < 23; i++, p *= 10) POW10[i] = p;
/** Correctly rounded 10^-i, to replace divisions by multiplications. */
const INV_POW10 = new Float64Array(23);
for (let i = 0; i < 23; i++) INV_POW10[i] = Number(`1e-${i}`);

/** Correctly rounded 10^n (via the spec-mandated correctly rounded string conversion). */
function pow10(n: number): number {
  return Number(`1e${n}`);
}

/**
 * Decimal exponent of the scaling for the binade starting at 2^p: k = floor(log10(2^p)) - 8,
 * so that x / 10^k lies in [1e8, 2e9) for every x in [2^p, 2^(p+1)).
 */
function scaleExponent(p: number): number {
  const lower = 2 ** p;
  let e = Math.floor(p * Math.LOG10E * Math.LN2);
  // Math.log10 style estimates can be off by one next to powers of ten; fix exactly.
  while (pow10(e + 1) <= lower) e++;
  while (pow10(e) > lower) e--;
  return e - 8;
}

/**
 * Per binade: the scale exponent k, the factor 10^-k and the decision margin at that scale
 * (see {@link startLevel}). Normal numbers are indexed by their biased exponent (1..254),
 * subnormals by 256 + the position of their top mantissa bit (0..22).
 */
const K = new Int32Array(256 + 23);
const SCALE = new Float64Array(256 + 23);
const EPS_AT = new Float64Array(256 + 23);
/** Per biased exponent: half an ulp, i.e. 2^(max(e,1) - 151). */
const HALF_ULP = new Float64Array(256);

/**
 * The grid level that every float32 of a binade is sure to have a point of: the largest r
 * with 10^r below the narrowest interval of the binade (scaled by 10^-k8, where k8 puts x in
 * [1e8, 2e9)), with room for the margins. The scaling then uses k = k8 + r, so the search
 * for the coarsest grid starts where the interval holds about 1 to 18 grid points instead
 * of 6 to 238, and the level loop below mostly runs once. All scaled values, and so all
 * their errors, are 10^r times smaller: the margin shrinks with them (`EPS / 10^r`), which
 * keeps every decision exactly as safe as at r = 0 and the slow path exactly as rare.
 */
function startLevel(k8: number, halfUlp: number, powerOfTwoBelow: boolean): number {
  const width = pow10(-k8) * halfUlp * (powerOfTwoBelow ? 1.5 : 2);
  let r = 0;
  while (pow10(r + 1) <= width - 4 * EPS) r++;
  return r;
}

function setBinade(index: number, k8: number, r: number): void {
  K[index] = k8 + r;
  SCALE[index] = pow10(-(k8 + r));
  EPS_AT[index] = EPS / POW10[r]!;
}
for (let e = 0; e < 256; e++) {
  HALF_ULP[e] = 2 ** (Math.max(e, 1) - 151);
  if (e >= 1 && e <= 254) {
    const k8 = scaleExponent(e - 127);
    setBinade(e, k8, startLevel(k8, HALF_ULP[e]!, e > 1));
  }
}
for (let b = 0; b < 23; b++) {
  const k8 = scaleExponent(b - 149);
  setBinade(256 + b, k8, startLevel(k8, HALF_ULP[0]!, false));
}

/** ASCII pairs "00".."99" so that digits are emitted two per division. */
const DIGIT_PAIRS = new Uint8Array(200);
for (let i = 0; i < 100; i++) {
  DIGIT_PAIRS[2 * i] = 48 + ((i / 10) | 0);
  DIGIT_PAIRS[2 * i + 1] = 48 + (i % 10);
}

/**
 * Decimal exponent of the last result of {@link shortestSlow}: the value is
 * `t * 10^resultExp` where `t` is the integer it returns. A module variable instead of a
 * returned object keeps the call free of allocations.
 */
let resultExp = 0;

/**
 * Whether the scaled grid point `c` (an integer < 2^31) is exactly the midpoint `mid`
 * scaled by 10^-k, given that the computed scaled midpoint equals `c`. See writeFloat32ArrayJson.
 */
function isExactly(c: number, mid: number, k: number): boolean {
  if (k <= 0) return k >= -12; // products exact
  return k <= 9 && c * POW10[k]! === mid; // quotient was rounded: check by multiplying back
}

/** Splits a `toPrecision`/`toString` style decimal into digits and exponent. */
function parseDecimal(s: string): number {
  const ePos = s.indexOf('e');
  const mant = ePos < 0 ? s : s.slice(0, ePos);
  let exp = ePos < 0 ? 0 : Number(s.slice(ePos + 1));
  const dot = mant.indexOf('.');
  let digits = mant;
  if (dot >= 0) {
    digits = mant.slice(0, dot) + mant.slice(dot + 1);
    exp -= mant.length - dot - 1;
  }
  let t = Number(digits);
  while (t !== 0 && t % 10 === 0) {
    t /= 10;
    exp++;
  }
  resultExp = exp;
  return t;
}

/**
 * Slow, obviously correct path (when a margin of the fast path in
 * {@link writeFloat32ArrayJson} is too thin): for p = 1..9 try the nearest p-digit decimal
 * (`toPrecision(p)`) and its neighbour on the other side of `x`, and accept the first that
 * reads back as `x` through `Number` + `Math.fround` (exactly what a JSON client does).
 * Only those two can work: read-back is monotonic, so if both nearest p-digit decimals
 * fail, every p-digit decimal fails. Returns the digit integer `t` (no trailing zeros, at
 * most 9 digits) and sets {@link resultExp}; never fails.
 */
function shortestSlow(x: number): number {
  for (let prec = 1; prec <= 9; prec++) {
    const s = x.toPrecision(prec);
    const back = Number(s);
    if (Math.fround(back) === x) return parseDecimal(s);
    // Neighbour on the other side of x, with the same number of significant digits.
    let t = parseDecimal(s);
    let exp = resultExp;
    while (t < POW10[prec - 1]!) {
      // parseDecimal stripped trailing zeros; restore a prec-digit integer.
      t *= 10;
      exp--;
    }
    if (back > x) {
      t -= 1;
      if (t < POW10[prec - 1]!) {
        t = POW10[prec]! - 1;
        exp--;
      }
    } else {
      t += 1;
      // 10^prec * 10^exp has one digit; it would have been found at prec = 1.
      if (t >= POW10[prec]!) continue;
    }
    const candidate = `${t}e${exp}`;
    if (Math.fround(Number(candidate)) === x) return parseDecimal(candidate);
  }
  // Unreachable: 9 significant digits always identify a float32.
  return parseDecimal(x.toPrecision(9));
}

/** Number of decimal digits of 1 <= t < 1e10. */
function digitCount(t: number): number {
  if (t < 1e5) return t < 100 ? (t < 10 ? 1 : 2) : t < 1e3 ? 3 : t < 1e4 ? 4 : 5;
  return t < 1e7 ? (t < 1e6 ? 6 : 7) : t < 1e8 ? 8 : t < 1e9 ? 9 : 10;
}

/** One-element vector and output bytes for {@link formatFloat32}. */
const single = new Float32Array(1);
const singleOut = Buffer.alloc(32);

/**
 * Formats a float32 as the shortest JSON number that reads back to it.
 *
 * @param x - a float32 value (e.g. an element of a `Float32Array`). A double that is not
 *   exactly a float32 is first rounded to float32, as storing it into a `Float32Array` would.
 * @returns the shortest decimal `s` with `Math.fround(JSON.parse(s)) === x` (at most 9
 *   significant digits; the closest to `x` if several exist), laid out like
 *   `Number.prototype.toString`. `0` and `-0` give `"0"`; `NaN` and `±Infinity` give `"null"`.
 */
export function formatFloat32(x: number): string {
  single[0] = x;
  // The array writer is the one implementation: `[<x>]` without its brackets.
  const end = writeFloat32ArrayJson(single, singleOut, 0);
  return singleOut.toString('latin1', 1, end - 1);
}

/** Writes the `count` lowest decimal digits of `t` (zero-padded) ending just before `end`. */
function writeDigits(buf: Uint8Array, end: number, t: number, count: number): void {
  let p = end;
  while (count >= 2) {
    const q = (t / 100) | 0;
    const d = (t - q * 100) << 1;
    buf[p - 1] = DIGIT_PAIRS[d + 1]!;
    buf[p - 2] = DIGIT_PAIRS[d]!;
    p -= 2;
    t = q;
    count -= 2;
  }
  if (count === 1) buf[p - 1] = 48 + (t % 10);
}

/**
 * Writes `t * 10^exp` (`nd` = digit count of `t`, `n = nd + exp`) at `pos` laid out like
 * Number::toString (ECMA-262 §6.1.6.1.20), except the `0.000ddd` case (-6 < n <= 0), which
 * the array loop writes itself (writeFraction) because it is the common one for
 * embeddings. Returns the new end.
 */
function writeOtherLayouts(buf: Uint8Array, pos: number, t: number, nd: number, n: number): number {
  if (n > 0 && n <= 21) {
    if (n >= nd) {
      writeDigits(buf, pos + nd, t, nd);
      pos += nd;
      for (let z = nd; z < n; z++) buf[pos++] = 48;
      return pos;
    }
    const div = POW10[nd - n]!;
    const ip = (t / div) | 0;
    writeDigits(buf, pos + n, ip, n);
    pos += n;
    buf[pos++] = 46;
    writeDigits(buf, pos + nd - n, t - ip * div, nd - n);
    return pos + nd - n;
  }
  const div = POW10[nd - 1]!;
  const first = (t / div) | 0;
  buf[pos++] = 48 + first;
  if (nd > 1) {
    buf[pos++] = 46;
    writeDigits(buf, pos + nd - 1, t - first * div, nd - 1);
    pos += nd - 1;
  }
  let e = n - 1;
  buf[pos++] = 101; // 'e'
  if (e < 0) {
    buf[pos++] = 45; // '-'
    e = -e;
  } else {
    buf[pos++] = 43; // '+'
  }
  if (e >= 10) {
    writeDigits(buf, pos + 2, e, 2);
    return pos + 2;
  }
  buf[pos++] = 48 + e;
  return pos;
}

/**
 * Longest output of one element: a sign plus 21 digits (fixed notation goes up to 1e21),
 * and the separating comma.
 */
const MAX_ELEMENT_BYTES = 23;

/** Output buffer reused across calls so that a call allocates only its result string. */
let outBuf = Buffer.allocUnsafe(64 * 1024);
/** Larger outputs get a one-off buffer, so one huge vector does not pin memory forever. */
const MAX_RETAINED_BYTES = 1 << 20;

/**
 * Formats a float32 vector as a JSON array, e.g. `[0.1,-2.5e-7,3]`, with every element
 * printed as by {@link formatFloat32} (non-finite elements become `null`).
 *
 * The text is written as ASCII bytes into a reused buffer and converted to a string once,
 * so the only per-call allocation is the result (no per-element strings).
 *
 * @param v - the vector; any `Float32Array`, including views into a larger buffer.
 * @returns the JSON text of the array.
 */
export function float32ArrayToJson(v: Float32Array): string {
  const len = v.length;
  if (len === 0) return '[]';
  const need = float32ArrayJsonMaxBytes(len);
  let buf = outBuf;
  if (buf.length < need) {
    buf = Buffer.allocUnsafe(need);
    if (need <= MAX_RETAINED_BYTES) outBuf = buf;
  }
  const end = writeFloat32ArrayJson(v, buf, 0);
  return buf.toString('latin1', 0, end);
}

/** Most bytes {@link writeFloat32ArrayJson} writes for a vector of `length` floats. */
export function float32ArrayJsonMaxBytes(length: number): number {
  return length * MAX_ELEMENT_BYTES + 2;
}

/**
 * Writes the JSON array of `v` (the text {@link float32ArrayToJson} returns) as ASCII bytes
 * into `buf` from `pos`, and returns the position after it. `buf` must have room for
 * {@link float32ArrayJsonMaxBytes}(v.length) bytes from `pos`. Lets a response writer put
 * vectors straight into its output buffer, without a string per vector.
 */
export function writeFloat32ArrayJson(v: Float32Array, buf: Uint8Array, pos: number): number {
  const len = v.length;
  // Bit patterns of the elements without copying (a Float32Array is always 4-byte aligned).
  const bitsView = new Uint32Array(v.buffer, v.byteOffset, len);
  const view = dataViewOf(buf);
  let sep = 91; // '[' before the first element, ',' before the others
  // The shortest digits are computed inline (see the module doc), not in a function of their
  // own: the JIT would not inline one that large, and the call would box `x` every time.
  for (let i = 0; i < len; i++) {
    // The separator's byte is written after the element: the fast layout below may write
    // up to three bytes before the element's first digit (see writeFraction).
    const sepPos = pos++;
    const bits = bitsView[i]!;
    const abs = bits & 0x7fffffff;
    if (abs === 0) {
      buf[pos++] = 48;
    } else if (abs >= 0x7f800000) {
      buf[pos++] = 110; // 'null'
      buf[pos++] = 117;
      buf[pos++] = 108;
      buf[pos++] = 108;
    } else {
      const x = Math.abs(v[i]!);
      // Digits t and decimal exponent exp of the shortest decimal t * 10^exp; t stays -1
      // when a margin is too thin to decide safely (then the slow path decides).
      let t = -1;
      let exp = 0;
      shortest: {
        const e = abs >>> 23;
        const frac = abs & 0x7fffff;
        const b = e !== 0 ? e : 287 - Math.clz32(frac); // 256 + top bit for subnormals
        const k = K[b]!;
        const eps = EPS_AT[b]!;
        const half = HALF_ULP[e]!;
        // Midpoints to the neighbours; exact in doubles. Below a power of two (frac == 0,
        // not the smallest normal) the lower neighbour is only half an ulp away.
        const hi = x + half;
        const lo = frac === 0 && e > 1 ? x - half * 0.5 : x - half;

        // A midpoint can be exactly a short decimal (large integers: e.g. every x in
        // [2^23, 2^24) or a fifth of those in [2^30, 2^34)). Reading that decimal back gives
        // exactly the midpoint, which Math.fround rounds to the even neighbour: it belongs
        // to x iff x's mantissa is even. To settle that case without the slow path we must
        // know a zero distance is exact (decimals merely *near* a midpoint still go to the
        // slow path: the decimal -> double rounding can land on the midpoint):
        //  - k in [-12, 0]: the products below are exact (25-bit midpoint times 5^12 < 2^53);
        //  - k in [1, 9]: dividing by the exact 10^k is correctly rounded, and a zero is
        //    confirmed by multiplying back (grid point < 2^31 times 5^9 < 2^53 is exact).
        let upper: number;
        let lower: number;
        if (k > 0 && k <= 22) {
          const d = POW10[k]!;
          upper = hi / d;
          lower = lo / d;
        } else {
          const scale = SCALE[b]!;
          upper = hi * scale;
          lower = lo * scale;
        }
        const even = (abs & 1) === 0;

        // Finest grid (integers): j = largest integer <= upper. Its distance to `upper` (and
        // the distance of the next integer) must be safely non-zero, so no grid point at any
        // level is ambiguous at the upper end. `upper < 2^31`, so `| 0` is a cheap floor
        // (and should that ever not hold, the wrapped `j` makes `rem` huge and we bail out).
        let j = upper | 0;
        const rem = upper - j;
        if (rem < eps || rem > 1 - eps) {
          if (rem !== 0 || !isExactly(j, hi, k)) break shortest;
          if (!even) j--; // the midpoint itself reads back as the neighbour
        }
        if (j - lower < eps) break shortest; // rare: intervals are at least one grid step wide (startLevel)

        // Coarsen while the largest multiple of 10^(r+1) below `upper` is still inside.
        let jr = j; // largest integer inside, divided by 10^r and rounded down
        let p = 1; // 10^r
        let r = 0;
        for (;;) {
          const jn = (jr / 10) | 0;
          const c = jn * p * 10;
          const margin = c - lower; // exact subtraction (both < 2^31 on a common 2^-22 grid)
          if (margin <= -eps) break;
          if (margin < eps) {
            if (margin !== 0 || !isExactly(c, lo, k)) break shortest;
            if (!even) break; // on the lower midpoint, which reads back as the neighbour
          }
          jr = jn;
          p *= 10;
          r++;
        }

        // Closest grid point to x at the chosen level, clamped into the interval: round
        // w = x * 10^-(k+r) half up (branch-free: random digits would mispredict a branch).
        exp = r + k;
        let w: number;
        if (exp <= 0 && exp >= -12) {
          // Exact: x * 10^j = m2 * 5^j * 2^(e2+j) with m2 * 5^j < 2^24 * 5^12 < 2^53. So
          // exact ties (e.g. 2048.03125) are seen as such and rounded up (away from zero),
          // as `toPrecision` (the slow path) would. This is the usual case for embeddings.
          w = x * POW10[-exp]!;
        } else {
          // Rounded (relative error < 2^-51): near-ties must go to the slow path.
          w = x * SCALE[b]! * INV_POW10[r]!;
          const f = w - (w | 0);
          if (f > 0.5 - eps && f < 0.5 + eps) break shortest;
        }
        let nearest = (w + 0.5) | 0;
        if (nearest > jr) {
          nearest = jr; // nearest is above the interval; jr * 10^r is the largest point inside
        } else {
          const m = nearest * p - lower;
          if (m <= -eps) {
            nearest++; // below the interval; the next point is inside (and <= jr)
          } else if (m < eps) {
            if (m !== 0 || !isExactly(nearest * p, lo, k)) break shortest;
            if (!even) nearest++; // on the lower midpoint, which reads back as the neighbour
          }
        }
        t = nearest;
      }
      if (t < 0) {
        t = shortestSlow(x);
        exp = resultExp;
      }
      // `| 0`: t always fits an int32 (<= 9 digits); telling the JIT so makes the digit
      // arithmetic use integer operations.
      t |= 0;
      // 1e-6 <= |x| < 1 (the usual case for embeddings) prints as `0.` then t zero-padded
      // to the -exp digits after the point; so may an x just below 1e-6 (see
      // FRACTION_MIN_BITS), which only digitCount tells.
      let nd = 0;
      if ((abs - FRACTION_MIN_BITS) >>> 0 >= FRACTION_SPAN) nd = digitCount(t);
      if (nd === 0 || (nd + exp <= 0 && nd + exp > -6)) {
        // No branch on the sign (random in embeddings, so mispredicted half the time): a
        // positive number's '-' lands on the separator's byte, which is written below.
        const start = pos + 2 + (bits >>> 31);
        pos = writeFraction(view, start, t, -exp);
        view.setUint16(start - 2, 0x2e30, true); // '0.'
        buf[start - 3] = 45; // '-'
      } else {
        if (bits >>> 31) buf[pos++] = 45; // '-'
        pos = writeOtherLayouts(buf, pos, t, nd, nd + exp);
      }
    }
    buf[sepPos] = sep;
    sep = 44;
  }
  if (len === 0) buf[pos++] = 91; // '[' (written as the first element's separator otherwise)
  buf[pos++] = 93; // ']'
  return pos;
}

/**
 * Bit patterns (sign cleared) of the float32 values x with 1e-6 <= x < 1: unsigned
 * `abs - FRACTION_MIN_BITS < FRACTION_SPAN`. Such an x prints as `0.` followed by its digits
 * zero-padded to -resultExp places: the printed decimal d is in x's rounding interval, which
 * lies below 1 (1 is a float32) and, when it does not contain 1e-6 itself (then d = 1e-6, one
 * digit), above 1e-6; so 1e-6 <= d < 1, which Number::toString lays out as `0.000ddd`.
 */
const FRACTION_MIN_BITS = (() => {
  scratchF32[0] = 1e-6;
  return scratchF32[0]! >= 1e-6 ? scratchU32[0]! : scratchU32[0]! + 1;
})();
const FRACTION_SPAN = 0x3f800000 - FRACTION_MIN_BITS;

/** ASCII of 0000..9999 as little-endian 32-bit words, for one unaligned store per four digits. */
const DIGIT_QUADS = new Uint32Array(10000);
for (let i = 0; i < 10000; i++) {
  const a = (i / 1000) | 0;
  const b = ((i / 100) | 0) % 10;
  const c = ((i / 10) | 0) % 10;
  const d = i % 10;
  DIGIT_QUADS[i] = (48 + a) | ((48 + b) << 8) | ((48 + c) << 16) | ((48 + d) << 24);
}
const ZERO_QUAD = 0x30303030;

/**
 * Writes `t` (< 1e9) zero-padded to `width` digits (1..14) from `start`, four digits a
 * store, and returns the end. Stores are whole groups of four aligned to the end, so up to
 * three bytes before `start` are overwritten: the caller writes those (`0.`, the sign, the
 * separator) afterwards. The zero padding comes from the groups themselves.
 */
function writeFraction(view: DataView, start: number, t: number, width: number): number {
  const end = start + width;
  const q = (t / 10000) | 0;
  view.setUint32(end - 4, DIGIT_QUADS[t - q * 10000]!, true);
  if (width > 4) {
    const q2 = (q / 10000) | 0;
    view.setUint32(end - 8, DIGIT_QUADS[q - q2 * 10000]!, true);
    if (width > 8) {
      view.setUint32(end - 12, DIGIT_QUADS[q2]!, true);
      if (width > 12) view.setUint32(end - 16, ZERO_QUAD, true);
    }
  }
  return end;
}

/** The last buffer written to and its DataView (one view per output buffer, not per vector). */
let lastBuf: Uint8Array | undefined;
let lastView: DataView | undefined;

function dataViewOf(buf: Uint8Array): DataView {
  if (buf !== lastBuf || lastView === undefined) {
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    lastBuf = buf;
  }
  return lastView;
}
