/**
 * Exhaustive check of a change to `src/util/float32Json.ts`: writes every float32 bit pattern
 * (or a range of them) with this build's array writer and with another build's, and fails on
 * the first byte that differs. Not a benchmark and not part of `npm run bench`: the whole range
 * takes about 15-30 minutes per core, so split it, e.g.
 *
 *   git show main:src/util/float32Json.ts > /tmp/old.ts
 *   node --import tsx bench/float32JsonCompare.ts /tmp/old.ts 0 2147483648 &
 *   node --import tsx bench/float32JsonCompare.ts /tmp/old.ts 2147483648 4294967296
 *
 * Patterns are written 768 to a vector (separators included) at an offset into the buffer.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as current from '../src/util/float32Json.js';

type Writer = typeof current.writeFloat32ArrayJson;

const [baselineFile, fromArg, toArg] = process.argv.slice(2);
if (baselineFile === undefined) throw new Error('usage: bench/float32JsonCompare.ts BASELINE.ts [from] [to]');
const baseline = (await import(pathToFileURL(path.resolve(baselineFile)).href)) as { writeFloat32ArrayJson: Writer };
const from = Number(fromArg ?? 0);
const to = Number(toArg ?? 2 ** 32);
const DIMS = 768;
const OFFSET = 3;

const vector = new Float32Array(DIMS);
const bits = new Uint32Array(vector.buffer);
const mine = Buffer.alloc(current.float32ArrayJsonMaxBytes(DIMS) + 2 * OFFSET);
const theirs = Buffer.alloc(mine.length);
const started = Date.now();
let differences = 0;
for (let base = from; base < to; base += DIMS) {
  const len = Math.min(DIMS, to - base);
  for (let i = 0; i < len; i++) bits[i] = base + i;
  const v = len === DIMS ? vector : vector.subarray(0, len);
  const endMine = current.writeFloat32ArrayJson(v, mine, OFFSET);
  const endTheirs = baseline.writeFloat32ArrayJson(v, theirs, OFFSET);
  if (endMine !== endTheirs || mine.compare(theirs, OFFSET, endTheirs, OFFSET, endMine) !== 0) {
    let at = OFFSET;
    while (at < Math.min(endMine, endTheirs) && mine[at] === theirs[at]) at++;
    const around = (b: Buffer, end: number): string => b.toString('latin1', Math.max(OFFSET, at - 40), Math.min(end, at + 40));
    console.log(`vector of bit patterns from 0x${base.toString(16)}: first difference at byte ${at - OFFSET}`);
    console.log(`  here:     ...${around(mine, endMine)}...`);
    console.log(`  baseline: ...${around(theirs, endTheirs)}...`);
    if (++differences >= 10) break;
  }
  if ((base - from) % (DIMS * 500_000) === 0) console.log(`at 0x${base.toString(16)}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
console.log(`${differences === 0 ? 'identical' : 'DIFFERENT'}: bit patterns ${from} to ${to}, ${((Date.now() - started) / 1000).toFixed(0)} s`);
if (differences > 0) process.exitCode = 1;
