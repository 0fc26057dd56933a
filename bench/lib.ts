/**
 * Benchmark plumbing: subprocesses for the gateway and the simulated node (so each has
 * its own event loop and its own peak RSS), HTTP helpers, percentiles and a table printer.
 * Everything runs on loopback and stops by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CLI = ['--import', 'tsx', 'src/cli/main.ts'];

export interface Proc {
  readonly url: string;
  readonly pid: number;
  /** Peak resident set size so far, in MB (VmHWM). */
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** Starts `sollol <args>` and resolves once it printed the URL it listens on. */
export async function startCli(args: string[], urlPattern: RegExp): Promise<Proc> {
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
