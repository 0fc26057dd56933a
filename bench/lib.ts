/**
 * Benchmark plumbing: subprocesses for the gateway and the simulated node (so each has
 * its own event loop and its own peak RSS), HTTP helpers, percentiles and a table printer.
 * Everything runs on loopback and stops by itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';

/**
 * Gateways, workers, simulated nodes and the CLI run as users run them: `npm start` and `npx
 * sollol` run the built dist/, not tsx (whose loader threads cost the gateway ~35 MB of peak
 * RSS, one in the main thread and one in the store's writer thread). Built once per bench run
 * from this tree.
 */
const CLI = ['dist/cli/main.js'];
let builtAt: string | undefined;

/** Builds dist/ from the current tree (tsc), once per bench process. */
export function buildDist(): void {
  if (builtAt !== undefined) return;
  const build = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stdout}${build.stderr}`);
  builtAt = new Date().toISOString();
}

export interface Proc {
  readonly url: string;
  readonly pid: number;
  /** The gateway's --data-dir (startGatewayProc only). */
  readonly dataDir?: string;
  /** Peak resident set size so far, in MB (VmHWM). */
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** Starts `sollol <args>` and resolves once it printed the URL it listens on. */
export async function startCli(args: string[], urlPattern: RegExp): Promise<Proc> {
  buildDist();
  const child = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let startTimer: NodeJS.Timeout | undefined;
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = urlPattern.exec(output);
      if (match) {
        clearTimeout(startTimer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`sollol ${args[0]} exited ${code ?? signal}: ${output}`)));
    startTimer = setTimeout(() => {
      // Never leave a half-started child behind.
      child.kill('SIGKILL');
      reject(new Error(`sollol ${args[0]} did not start: ${output}`));
    }, 60_000).unref();
  });
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM') process.stderr.write(`sollol ${args[0]} (pid ${child.pid}) ended early: ${code ?? signal}\n${output.slice(-2000)}\n`);
  });
  return { url, pid: child.pid!, peakRssMb: () => peakRss(child), stop: () => stopChild(child) };
}

export function startGatewayProc(flags: string[]): Promise<Proc> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-bench-'));
  return startCli(['up', '--port', '0', '--data-dir', dataDir, ...flags], /listening on (http:\/\/[\d.:]+)/).then((proc) => ({
    ...proc,
    dataDir,
    stop: async () => {
      await proc.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  }));
}

/** `sollol worker <flags>` (distributed mode); its `url` is its instance id (a worker does not listen). */
export function startWorkerProc(flags: string[]): Promise<Proc> {
  return startCli(['worker', ...flags], /worker (\S+) ready/);
}

export function startSimProc(flags: string[] = []): Promise<Proc> {
  return startCli(['sim', '--port', '0', ...flags], /listening on (http:\/\/[\d.:]+)/);
}

function peakRss(child: ChildProcess): number {
  try {
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  // Already gone (exited, or killed by a signal): an 'exit' listener would never fire.
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function postJson(url: string, body: unknown): Promise<any> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await response.json();
  if (!response.ok) throw new Error(`${url} answered ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

export async function getJson(url: string): Promise<any> {
  const response = await fetch(url);
  return response.json();
}

/** Polls the job every `intervalMs` until it is terminal; returns its last status. */
export async function waitForJob(base: string, jobId: string, intervalMs = 10, onPoll?: (ms: number) => void): Promise<any> {
  for (;;) {
    const started = performance.now();
    const status = await getJson(`${base}/api/batch/jobs/${jobId}`);
    onPoll?.(performance.now() - started);
    if (['completed', 'failed', 'cancelled'].includes(status.status)) return status;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function texts(n: number, prefix = 'bench'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix} document ${i}: a short passage about embeddings and batch processing`);
}

export type Row = [string, string, string];

export function printTable(title: string, rows: Row[]): void {
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  console.log(`\n## ${title}`);
  for (const row of rows) console.log(`  ${row[0].padEnd(widths[0]!)}  ${row[1].padStart(widths[1]!)}  ${row[2]}`);
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/**
 * User + system CPU seconds used so far by process `pid` (all its threads), from
 * /proc/<pid>/stat: what process.cpuUsage() would report inside that process, read from
 * outside so the measurement costs the gateway nothing. Resolution: one clock tick (10 ms).
 */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces), so utime and stime are at 11 and 12.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Linux's USER_HZ, 100 on every architecture Node supports. */
const CLOCK_TICKS = 100;

/** Current resident set size of `pid` in MB (VmRSS). */
export function rssMb(pid: number): number {
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}

export const verdict = (ok: boolean): string => (ok ? 'MET' : 'MISSED');

/** Runs `work` for each item with at most `limit` at once. */
export async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

export interface JobRun {
  /** From just before the submit until this client saw the job terminal (its poll interval included). */
  readonly seconds: number;
  /**
   * From just before the submit until the job ended by the gateway's own clock (its
   * `completed_at`; same machine, same clock): what the gateway took, whatever the poll interval.
   */
  readonly gatewaySeconds: number;
  /** The submit's round trip (parsing and admitting the documents). */
  readonly submitSeconds: number;
  readonly jobId: string;
}

/** Submits one batch job and waits until it is terminal; throws unless every document succeeded. */
export async function runJob(base: string, model: string, documents: string[], pollMs = 10): Promise<JobRun> {
  const wallStart = Date.now();
  const started = performance.now();
  const job = await postJson(`${base}/api/batch/embed`, { model, documents });
  const submitSeconds = (performance.now() - started) / 1000;
  const status = await waitForJob(base, job.job_id, pollMs);
  const seconds = (performance.now() - started) / 1000;
  if (status.progress.completed_items !== documents.length) {
    throw new Error(`job ${job.job_id} ${status.status}: completed ${status.progress.completed_items} of ${documents.length}`);
  }
  // completed_at has millisecond resolution; never later than what the client saw.
  const gatewaySeconds = Math.min(seconds, Math.max(0, Date.parse(status.completed_at) - wallStart) / 1000);
  return { seconds, gatewaySeconds, submitSeconds, jobId: job.job_id };
}

/** Bytes of the files directly in `dir` (a gateway's data directory: database, WAL, shm). */
export function dirBytes(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) total += fs.statSync(path.join(dir, name)).size;
  return total;
}

/**
 * Documents per second the nodes deliver when this process drives them itself (2 calls in flight
 * each, `chunk` documents a call); with `decode` each answer's vectors are parsed into Float32Arrays too.
 */
export async function driveDirectly(nodes: readonly Proc[], model: string, documents: string[], chunk: number, decode: boolean): Promise<number> {
  let next = 0;
  const pools = nodes.map((node) => new Pool(node.url, { connections: 2 }));
  const started = performance.now();
  const lane = async (pool: Pool): Promise<void> => {
    while (next < documents.length) {
      const batch = documents.slice(next, (next += chunk));
      const body = JSON.stringify({ model, input: batch, truncate: true });
      const response = await pool.request({ method: 'POST', path: '/api/embed', headers: { 'content-type': 'application/json' }, body });
      const text = await response.body.text();
      if (decode) (JSON.parse(text) as { embeddings: number[][] }).embeddings.forEach((v) => Float32Array.from(v));
    }
  };
  await Promise.all(pools.flatMap((pool) => [lane(pool), lane(pool)]));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(pools.map((pool) => pool.close()));
  return documents.length / seconds;
}

/**
 * Runs the built CLI (`sollol <args>`, as `npx sollol` does) to its end, sampling its peak RSS
 * (VmHWM); past `timeoutMs` it is stopped (SIGTERM) and its code is null.
 */
export function runCli(args: string[], timeoutMs = 30 * 60_000): Promise<{ code: number | null; stderr: string; peakRssMb: number; wallSeconds: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['dist/cli/main.js', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SOLLOL_PROGRESS_INTERVAL: '10' } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let peak = 0;
  const sample = (): void => {
    try {
      const kb = Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
      peak = Math.max(peak, Math.round(kb / 1024));
    } catch {
      // exited between samples
    }
  };
  const timer = setInterval(sample, 100);
  const deadline = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearInterval(timer);
      clearTimeout(deadline);
      resolve({ code, stderr, peakRssMb: peak, wallSeconds: (performance.now() - started) / 1000 });
    });
  });
}
