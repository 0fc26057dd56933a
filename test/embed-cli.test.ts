/**
 * `sollol embed` and the job commands as subprocesses against a real gateway and simulated
 * nodes: input and output formats, blank lines, order and ids, a kill -9 of the CLI then a
 * rerun (no range embedded twice: the node's document count), a gateway restart mid-run,
 * failed items (exit 3, retried through the retry route), bad usage (exit 2).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { simVector } from '../src/sim/index.js';
import { MODEL, call, startSim, startTestGateway, tempDir, waitFor, waitForStatus } from './helpers.js';
import { spawnGateway } from './subprocess.js';
import { freePort } from './ports.js';
import { mountTmpfs } from './tmpfs.js';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

interface Run {
  child: ChildProcess;
  output(): string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function startCli(t: TestContext, args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Run {
  const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SOLLOL_PROGRESS_INTERVAL: '0.2', ...options.env } });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  if (options.stdin !== undefined) child.stdin!.end(options.stdin);
  else child.stdin!.end();
  const done = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stdout, stderr }));
  return { child, output: () => stdout + stderr, done };
}

async function cli(t: TestContext, args: string[], options: { env?: Record<string, string>; stdin?: string } = {}) {
  return startCli(t, args, options).done;
}

/**
 * `sollol embed` of 40 lines to `outName` on a slow node (20 ms/doc, ranges of 10, one job at a
 * time), left running once its state file records a range written.
 */
async function slowRunPastFirstRange(t: TestContext, label: string, outName: string) {
  const node = await startSim(t, { delayPerDocMs: 20, serial: true });
  const gw = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '10', cache: false, chunkSize: '5' });
  const dir = tempDir(t);
  const lines = Array.from({ length: 40 }, (_, i) => `${label} ${i}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, outName);
  const args = ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gw.url, '--concurrency', '1'];
  const first = startCli(t, args);
  const statePath = `${out}.sollol-state.json`;
  await waitFor(() => {
    if (!fs.existsSync(statePath)) return undefined;
    return JSON.parse(fs.readFileSync(statePath, 'utf8')).writtenBatches >= 1 ? true : undefined;
  }, 'a range written', 60_000);
  return { lines, out, args, first, statePath };
}

function readJsonl(file: string): any[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
}

function assertVector(got: ArrayLike<number>, text: string, what: string): void {
  assert.deepEqual(Array.from(got, Math.fround), Array.from(simVector(MODEL, text, 768)), what);
}

function readNpy(file: string): { rows: number; dims: number; data: Float32Array } {
  const bytes = fs.readFileSync(file);
  assert.equal(bytes.subarray(1, 6).toString('latin1'), 'NUMPY');
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLength).toString('latin1');
  const shape = /'shape': \((\d+), (\d+)\)/.exec(header)!;
  assert.match(header, /'descr': '<f4'/);
  const body = bytes.subarray(10 + headerLength);
  const data = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
  return { rows: Number(shape[1]), dims: Number(shape[2]), data };
}

test('text input: blank lines skipped and counted, one job per gateway batch limit, vectors in input order, ids = line numbers', async (t) => {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '4' });
  const dir = tempDir(t);
  const lines = ['alpha', '', 'beta', 'gamma', '   ', 'delta', 'epsilon', 'zeta', 'eta', 'theta', '', 'iota'];
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out.jsonl');
  const run = await cli(t, ['embed', path.join(dir, 'in.txt'), '-o', out, '--model', MODEL, '--gateway', gw.url]);
  assert.equal(run.code, 0, run.stderr);
  const rows = readJsonl(out);
  const expected = lines.map((text, i) => ({ text, line: i + 1 })).filter((d) => d.text.trim() !== '');
  assert.equal(rows.length, expected.length);
  rows.forEach((row, i) => {
    assert.equal(row.index, i);
    assert.equal(row.id, expected[i]!.line);
    assertVector(row.embedding, expected[i]!.text, `row ${i}`);
  });
  assert.match(run.stderr, /embedded 9 of 9 documents .* 3 blank skipped; 0 failed/);
  assert.equal(node.stats().documents, 9, 'blank lines are never sent');
  assert.ok(!fs.existsSync(`${out}.sollol-state.json`), 'the state file is removed after a complete run');
  assert.ok(!fs.existsSync(`${out}.errors.jsonl`));
  // Not a terminal: log lines instead of a bar.
  assert.match(run.stderr, /sollol: embed \d+( of \d+)? documents/);
  // Jobs of at most 4 documents: 9 documents make 3 jobs (deleted once written).
  assert.equal((await call(`${gw.url}/api/stats`)).body.batch_jobs.total_jobs_created, 3);
});

test('JSONL input (--text-field, --id-field) to .npy: float32 rows in order, ids in OUTPUT.ids.txt', async (t) => {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url] });
  const dir = tempDir(t);
  const records = [{ doc: 'one', key: 'k1' }, { doc: 'two', key: 7 }, {}, { doc: '', key: 'blank' }, { doc: 'three' }];
  fs.writeFileSync(path.join(dir, 'in.jsonl'), `${records.map((r) => JSON.stringify(r)).join('\n')}\n\n`);
  const out = path.join(dir, 'out.npy');
  const run = await cli(t, ['embed', path.join(dir, 'in.jsonl'), '-o', out, '-m', MODEL, '--text-field', 'doc', '--id-field', 'key', '--gateway', gw.url]);
  assert.equal(run.code, 0, run.stderr);
  const npy = readNpy(out);
  assert.equal(npy.rows, 3);
  assert.equal(npy.dims, 768);
  ['one', 'two', 'three'].forEach((text, i) => assertVector(npy.data.subarray(i * 768, (i + 1) * 768), text, text));
  assert.deepEqual(fs.readFileSync(`${out}.ids.txt`, 'utf8').split('\n'), ['k1', '7', '5', '']);
  assert.match(run.stderr, /3 blank skipped/);
});

test('CSV and TSV input (--text-column, id column), and stdin', async (t) => {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url] });
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'in.csv'), 'ref,body\nr1,"hello, world"\nr2,\nr3,"two\nlines"\n');
  const csvOut = path.join(dir, 'csv.jsonl');
  const csv = await cli(t, ['embed', path.join(dir, 'in.csv'), '-o', csvOut, '-m', MODEL, '--text-column', 'body', '--id-column', 'ref', '--gateway', gw.url]);
  assert.equal(csv.code, 0, csv.stderr);
  const csvRows = readJsonl(csvOut);
  assert.deepEqual(csvRows.map((r) => r.id), ['r1', 'r3']);
  assertVector(csvRows[0].embedding, 'hello, world', 'csv 0');
  assertVector(csvRows[1].embedding, 'two\nlines', 'csv 1');

  fs.writeFileSync(path.join(dir, 'in.tsv'), 'id\ttext\n10\tfirst\n11\tsecond "quoted"\n');
  const tsvOut = path.join(dir, 'tsv.jsonl');
  const tsv = await cli(t, ['embed', path.join(dir, 'in.tsv'), '-o', tsvOut, '-m', MODEL, '--gateway', gw.url]);
  assert.equal(tsv.code, 0, tsv.stderr);
  const tsvRows = readJsonl(tsvOut);
  assert.deepEqual(tsvRows.map((r) => r.id), ['10', '11']);
  assertVector(tsvRows[1].embedding, 'second "quoted"', 'tsv 1');

  const stdinOut = path.join(dir, 'stdin.jsonl');
  const piped = await cli(t, ['embed', '-', '-o', stdinOut, '-m', MODEL], { stdin: 'from stdin\n\nsecond\n', env: { SOLLOL_GATEWAY: gw.url } });
  assert.equal(piped.code, 0, piped.stderr);
  const stdinRows = readJsonl(stdinOut);
  assert.deepEqual(stdinRows.map((r) => [r.id, r.index]), [[1, 0], [3, 1]]);
  assertVector(stdinRows[1].embedding, 'second', 'stdin 1');
});

test('bad usage exits 2 with one line; an unreachable gateway exits 1', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'in.txt'), 'a\n');
  const input = path.join(dir, 'in.txt');
  for (const [args, pattern] of [
    [['embed', input, '-m', MODEL], /missing -o\/--output/],
    [['embed', input, '-o', path.join(dir, 'o.jsonl')], /missing -m\/--model/],
    [['embed', input, '-o', path.join(dir, 'o.txt'), '-m', MODEL], /name it \.jsonl or \.npy/],
    [['embed', path.join(dir, 'missing.txt'), '-o', path.join(dir, 'o.jsonl'), '-m', MODEL], /cannot read the input file/],
    [['embed', input, '-o', path.join(dir, 'o.jsonl'), '-m', MODEL, '--retries', 'x'], /--retries must be an integer/],
    [['embed', input, '-o', path.join(dir, 'o.jsonl'), '-m', MODEL, '--no-such-flag'], /unknown option/],
    [['embed'], /missing required argument/],
    [['results', 'abc'], /missing -o\/--output/],
  ] as const) {
    const run = await cli(t, [...args]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, pattern);
  }
  const port = await freePort();
  const down = await cli(t, ['embed', input, '-o', path.join(dir, 'o.jsonl'), '-m', MODEL, '--gateway', `http://127.0.0.1:${port}`, '--gateway-wait', '0.5']);
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /cannot reach the gateway/);
});

test('failed documents are retried once through the retry route, listed in OUTPUT.errors.jsonl, exit 3', async (t) => {
  const node = await startSim(t, { maxInputChars: 100 });
  const gw = await startTestGateway(t, { backend: [node.url], chunkSize: '4' });
  const dir = tempDir(t);
  const lines = ['short one', 'x'.repeat(300), 'short two', 'short three'];
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out.jsonl');
  const run = await cli(t, ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--no-truncate', '--keep-jobs', '--gateway', gw.url]);
  assert.equal(run.code, 3, run.stderr);
  assert.match(run.stderr, /embedded 3 of 4 documents.*1 failed, listed in .*out\.jsonl\.errors\.jsonl/);
  assert.match(run.stderr, /retrying 1 documents of job/);
  assert.deepEqual(readJsonl(out).map((r) => r.id), [1, 3, 4]);
  const errors = readJsonl(`${out}.errors.jsonl`);
  assert.deepEqual(errors.map((e) => [e.id, e.index, e.code]), [[2, 1, 'INPUT_REJECTED']]);
  const jobs = (await call(`${gw.url}/api/batch/jobs`)).body.jobs;
  assert.equal(jobs.length, 2);
  assert.equal(jobs[0].retry_of, jobs[1].job_id, 'the second job is a retry of the first');
});

test('kill -9 of the CLI, then the same command again: continues without embedding a finished range twice', async (t) => {
  const node = await startSim(t, { delayPerDocMs: 20, serial: true });
  const gw = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '10', cache: false, chunkSize: '5' });
  const dir = tempDir(t);
  const lines = Array.from({ length: 60 }, (_, i) => `resume document ${i}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out.jsonl');
  const args = ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gw.url, '--concurrency', '2'];
  const first = startCli(t, args);
  const statePath = `${out}.sollol-state.json`;
  await waitFor(() => {
    if (!fs.existsSync(statePath)) return undefined;
    const state = JSON.parse(fs.readFileSync(statePath, 'utf8'));
    return state.writtenBatches >= 2 && Object.keys(state.jobs).length > 0 ? true : undefined;
  }, 'two ranges written and one job in flight', 60_000);
  first.child.kill('SIGKILL');
  const killed = await first.done;
  assert.equal(killed.signal, 'SIGKILL');
  const second = await cli(t, args);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /continuing from .*sollol-state\.json: \d+ documents already written/);
  // The rate counts the documents this run wrote (once it always said 0 docs/s on a resume).
  const rate = /embedded 60 of 60 documents .* \(([\d,]+) docs\/s\)/.exec(second.stderr);
  assert.ok(rate, second.stderr);
  assert.ok(Number(rate[1]!.replace(/,/g, '')) > 0, `a resumed run's rate: ${rate[0]}`);
  const rows = readJsonl(out);
  assert.deepEqual(rows.map((r) => r.index), lines.map((_, i) => i));
  rows.forEach((row, i) => assertVector(row.embedding, lines[i]!, `row ${i}`));
  assert.equal(node.stats().documents, 60, 'every document embedded exactly once across both runs');
});

test('the same command again after it finished (its jobs deleted once written), and into another output: each run embeds anew', async (t) => {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '10', cache: false });
  const dir = tempDir(t);
  const lines = Array.from({ length: 25 }, (_, i) => `again document ${i}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  for (const name of ['out.jsonl', 'out.jsonl', 'other.jsonl']) {
    const out = path.join(dir, name);
    fs.rmSync(out, { force: true });
    // Once, the second run's submits were answered from the first run's Idempotency-Keys with
    // jobs already deleted, and it stopped on JOB_NOT_FOUND.
    const run = await cli(t, ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gw.url]);
    assert.equal(run.code, 0, run.stderr);
    const rows = readJsonl(out);
    assert.deepEqual(rows.map((r) => r.index), lines.map((_, i) => i));
    rows.forEach((row, i) => assertVector(row.embedding, lines[i]!, `${name} row ${i}`));
  }
  assert.equal(node.stats().documents, 75, 'three runs, each embedding every document');
});

test('a range over the gateway\'s body limit says which --batch-size to rerun with; a resume refuses another --batch-size', async (t) => {
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url], bodyLimitMb: '0.01', cache: false });
  const dir = tempDir(t);
  const lines = Array.from({ length: 80 }, (_, i) => `long document ${i} ${'x'.repeat(200)}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out.jsonl');
  const args = ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gw.url];
  const big = await cli(t, args);
  assert.equal(big.code, 1, big.stderr);
  assert.match(big.stderr, /the range of 80 documents from document 0 \([\d.]+ KB of text\) is larger than the gateway accepts in one request \(BODY_TOO_LARGE\): rerun with --restart --batch-size 40/);
  // The state file's ranges have the gateway's batch size: a resume cannot re-cut them silently.
  const changed = await cli(t, [...args, '--batch-size', '20']);
  assert.equal(changed.code, 2, changed.stderr);
  assert.match(changed.stderr, /cuts the input into ranges of \d[\d,]* documents; --batch-size 20 needs --restart/);
  const small = await cli(t, [...args, '--restart', '--batch-size', '20']);
  assert.equal(small.code, 0, small.stderr);
  assert.deepEqual(readJsonl(out).map((r) => r.index), lines.map((_, i) => i));
  // One document over the limit: no batch size helps, and the message does not suggest one.
  fs.writeFileSync(path.join(dir, 'one.txt'), `${'y'.repeat(20_000)}\n`);
  const one = await cli(t, ['embed', path.join(dir, 'one.txt'), '-o', path.join(dir, 'one.jsonl'), '-m', MODEL, '--gateway', gw.url]);
  assert.equal(one.code, 1, one.stderr);
  assert.match(one.stderr, /document 0 alone \(20\.0 KB of text\) is larger than the gateway accepts in one request \(BODY_TOO_LARGE\): shorten it, or raise the gateway's --body-limit-mb/);
});

test('a rerun whose output was cut shorter or deleted since is refused (continuing would leave a gap); --restart starts over', async (t) => {
  const { lines, out, args, first, statePath } = await slowRunPastFirstRange(t, 'gap document', 'out.npy');
  first.child.kill('SIGKILL');
  await first.done;
  const written = JSON.parse(fs.readFileSync(statePath, 'utf8')).mark.outputBytes as number;

  // Cut shorter: once, the rerun truncated the file back *up* to the recorded length (zeros).
  fs.truncateSync(out, 100);
  const cut = await cli(t, args);
  assert.equal(cut.code, 2, cut.stderr);
  assert.match(cut.stderr, new RegExp(`cannot continue from .*sollol-state\\.json: .*out\\.npy has 100 bytes, fewer than the ${written} the last run wrote to it; pass --restart`));
  fs.rmSync(out);
  const gone = await cli(t, args);
  assert.equal(gone.code, 2, gone.stderr);
  assert.match(gone.stderr, /out\.npy is missing \(the last run wrote \d+ bytes to it\); pass --restart to start over/);

  const again = await cli(t, [...args, '--restart']);
  assert.equal(again.code, 0, again.stderr);
  const npy = readNpy(out);
  assert.equal(npy.rows, 40);
  lines.forEach((text, i) => assertVector(npy.data.subarray(i * 768, (i + 1) * 768), text, `row ${i}`));
});

test('a second sollol embed on the same output is refused while the first runs; a lock left by a run that died is taken over', async (t) => {
  const node = await startSim(t, { delayPerDocMs: 20, serial: true });
  const gw = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '10', cache: false, chunkSize: '5' });
  const dir = tempDir(t);
  const lines = Array.from({ length: 40 }, (_, i) => `locked document ${i}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out.jsonl');
  const lock = `${out}.sollol-lock`;
  const args = ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gw.url, '--concurrency', '1'];
  const first = startCli(t, args);
  await waitFor(() => (fs.existsSync(`${out}.sollol-state.json`) ? true : undefined), 'the first run under way', 60_000);
  const second = await cli(t, args);
  assert.equal(second.code, 2, second.stderr);
  assert.match(second.stderr, new RegExp(`another sollol embed \\(pid ${first.child.pid}\\) is writing .*out\\.jsonl: wait for it to finish or stop it`));
  const done = await first.done;
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual(readJsonl(out).map((r) => r.index), lines.map((_, i) => i), 'the first run wrote every row once, in order');
  assert.equal(fs.existsSync(lock), false, 'released at exit');

  // A lock naming a process that is gone (a run killed with -9 leaves one).
  const dead = spawn(process.execPath, ['-e', '']);
  await once(dead, 'exit');
  fs.writeFileSync(lock, `${dead.pid}\n`);
  fs.rmSync(out);
  const taken = await cli(t, args);
  assert.equal(taken.code, 0, taken.stderr);
  assert.equal(readJsonl(out).length, 40);
  assert.equal(fs.existsSync(lock), false);
});

test('the output\'s disk fills up: the run stops saying to free space and rerun; the rerun continues to every row', async (t) => {
  const mounted = mountTmpfs(2);
  if ('skip' in mounted) return t.skip(mounted.skip);
  t.after(mounted.unmount);
  const node = await startSim(t);
  const gw = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '500', cache: false });
  const dir = tempDir(t);
  const lines = Array.from({ length: 3000 }, (_, i) => `full output disk ${i}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(mounted.dir, 'out.npy');
  const args = ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gw.url];
  // 3,000 x 768 float32 is 9.2 MB: it cannot fit in 2 MB.
  const full = await cli(t, args);
  assert.equal(full.code, 1, full.stderr);
  assert.match(full.stderr, /the disk holding .*out\.npy is full \(ENOSPC\): free some space, then run the same command again to continue/);
  mounted.resize(16);
  const again = await cli(t, args);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /continuing from/);
  const npy = readNpy(out);
  assert.equal(npy.rows, 3000);
  for (let i = 0; i < 3000; i += 37) assertVector(npy.data.subarray(i * 768, (i + 1) * 768), lines[i]!, `row ${i}`);
  assertVector(npy.data.subarray(2999 * 768), lines[2999]!, 'the last row');
});

test('Ctrl-C says how far it got and how to continue (exit 130); the same command continues', async (t) => {
  const { lines, out, args, first } = await slowRunPastFirstRange(t, 'interrupted document', 'out.jsonl');
  first.child.kill('SIGINT');
  const stopped = await first.done;
  assert.equal(stopped.code, 130, stopped.stderr);
  assert.match(stopped.stderr, /sollol: interrupted: \d+ documents written to .*out\.jsonl; run the same command again to continue/);
  assert.equal(fs.existsSync(`${out}.sollol-lock`), false, 'the lock is released');
  const again = await cli(t, args);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readJsonl(out).map((r) => r.index), lines.map((_, i) => i));
});

test('a CLI killed between a submit and saving its state: the rerun finds that job (Idempotency-Key), nothing is embedded twice', async (t) => {
  const node = await startSim(t, { serial: true });
  const gw = await startTestGateway(t, { backend: [node.url], maxBatchDocuments: '10', cache: false });
  const dir = tempDir(t);
  const lines = Array.from({ length: 30 }, (_, i) => `submitted once ${i}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out.jsonl');
  const args = ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gw.url, '--concurrency', '1'];
  const crashed = await cli(t, args, { env: { SOLLOL_TEST_CRASH_AFTER_SUBMIT: '1' } });
  assert.equal(crashed.signal, 'SIGKILL', 'the test hook killed the CLI after its first submit');
  const made = (await call(`${gw.url}/api/batch/jobs`)).body.jobs as { job_id: string }[];
  assert.equal(made.length, 1, 'one job was submitted before the crash');
  await waitForStatus(gw.url, made[0]!.job_id, ['completed']);
  const again = await cli(t, args);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(readJsonl(out).map((r) => r.index), lines.map((_, i) => i));
  assert.equal(node.stats().documents, 30, 'the range submitted before the crash was not embedded again');
});

test('a gateway restart while the CLI runs is waited out; the output is complete and in order', async (t) => {
  const node = await startSim(t, { delayPerDocMs: 10, serial: true });
  const dataDir = tempDir(t);
  const port = await freePort();
  const gwArgs = ['--port', String(port), '--backend', node.url, '--data-dir', dataDir, '--max-batch-documents', '10', '--no-cache', '--chunk-size', '5'];
  let gateway = await spawnGateway(t, gwArgs);
  // spawnGateway adds --port 0; the explicit --port given after it wins.
  assert.equal(gateway.url, `http://127.0.0.1:${port}`);
  const dir = tempDir(t);
  const lines = Array.from({ length: 50 }, (_, i) => `restart document ${i}`);
  fs.writeFileSync(path.join(dir, 'in.txt'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out.jsonl');
  const run = startCli(t, ['embed', path.join(dir, 'in.txt'), '-o', out, '-m', MODEL, '--gateway', gateway.url, '--concurrency', '2']);
  await waitFor(() => (node.stats().documents >= 15 ? true : undefined), 'the run to be under way', 60_000);
  await gateway.kill9();
  gateway = await spawnGateway(t, gwArgs);
  const result = await run.done;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /retrying in/);
  const rows = readJsonl(out);
  assert.deepEqual(rows.map((r) => r.index), lines.map((_, i) => i));
  rows.forEach((row, i) => assertVector(row.embedding, lines[i]!, `row ${i}`));
  await gateway.stop();
});

test('sollol jobs, status, wait, cancel and results', async (t) => {
  const node = await startSim(t, { delayPerDocMs: 20, serial: true });
  const gw = await startTestGateway(t, { backend: [node.url], chunkSize: '2' });
  const documents = Array.from({ length: 6 }, (_, i) => `job command ${i}`);
  const done = (await call(`${gw.url}/api/batch/embed`, { body: { model: MODEL, documents } })).body.job_id as string;
  const env = { SOLLOL_GATEWAY: gw.url };
  const wait = await cli(t, ['wait', done], { env });
  assert.equal(wait.code, 0, wait.stderr);
  assert.match(wait.stderr, new RegExp(`job ${done} completed: 6 of 6 embedded, 0 failed`));
  const status = await cli(t, ['status', done], { env });
  assert.equal(JSON.parse(status.stdout).status, 'completed');
  const dir = tempDir(t);
  const npy = path.join(dir, 'r.npy');
  const results = await cli(t, ['results', done, '-o', npy], { env });
  assert.equal(results.code, 0, results.stderr);
  const matrix = readNpy(npy);
  assert.equal(matrix.rows, 6);
  documents.forEach((text, i) => assertVector(matrix.data.subarray(i * 768, (i + 1) * 768), text, text));
  const long = (await call(`${gw.url}/api/batch/embed`, { body: { model: MODEL, documents: Array.from({ length: 200 }, (_, i) => `long ${i}`) } })).body.job_id as string;
  const cancel = await cli(t, ['cancel', long], { env });
  assert.equal(cancel.code, 0, cancel.stderr);
  assert.equal((await call(`${gw.url}/api/batch/jobs/${long}`)).body.status, 'cancelled');
  const waitCancelled = await cli(t, ['wait', long], { env });
  assert.equal(waitCancelled.code, 1);
  const jobs = await cli(t, ['jobs'], { env });
  assert.equal(jobs.code, 0, jobs.stderr);
  assert.match(jobs.stdout, new RegExp(`${long}\\s+cancelled`));
  assert.match(jobs.stdout, new RegExp(`${done}\\s+completed\\s+6/6`));
  const missing = await cli(t, ['status', '00000000-0000-0000-0000-000000000000'], { env });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /JOB_NOT_FOUND/);
});
