/**
 * moonshot (not in the default set: `npm run bench -- moonshot`): 1,000,000 short documents,
 * 384 dims, through the gateway (default flags) to 4 simulated serial nodes at 0.2 ms/doc
 * (summed capacity 20,000 docs/s). Two passes, each on a fresh gateway before the same nodes:
 * - `sollol embed` (the built CLI, as a user runs it) on a file of 1,000,000 lines, output .npy;
 * - a bench client: it cuts the documents into jobs of 10,000 (the --max-batch-documents
 *   default), keeps LANES jobs going at once, and for each one submits, polls, and downloads
 *   the results as base64 (read and dropped): the gateway without the CLI's own cost.
 * Targets (issue 12): end-to-end docs/s >= 95 % of summed capacity; gateway RSS < 300 MB;
 * gateway CPU per document printed. Each pass is abandoned at a 10-minute deadline, the bench
 * client's also when the data directory passes 12 GB (reported).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuSeconds, dirBytes, eachLimited, fmt, postJson, runCli, startGatewayProc, startSimProc, verdict, waitForJob, type Proc, type Row } from './lib.js';

const DOCS = 1_000_000;
const JOB_DOCS = 10_000;
const LANES = 3;
const NODES = 4;
const MS_PER_DOC = 0.2;
const MODEL = 'all-minilm';
const DEADLINE_MS = 10 * 60_000;
/** Stops submitting past this size of the data directory (an unbounded WAL must not fill a shared disk). */
const DISK_LIMIT_BYTES = 12e9;

function jobTexts(job: number): string[] {
  return Array.from({ length: JOB_DOCS }, (_, i) => `moonshot ${job}.${i} short text`);
}

export async function benchMoonshot(): Promise<Row[]> {
  const sims: Proc[] = [];
  let gateway: Proc | undefined;
  try {
    for (let i = 0; i < NODES; i++) sims.push(await startSimProc(['--serial', '--delay-per-doc', String(MS_PER_DOC)]));
    const rows = await throughCli(sims);
    gateway = await startGatewayProc(sims.flatMap((s) => ['--backend', s.url]));
    const base = gateway.url;
    const warm = await postJson(`${base}/api/batch/embed`, { model: MODEL, documents: Array.from({ length: 1000 }, (_, i) => `moonshot warm-up ${i}`) });
    await waitForJob(base, warm.job_id);
    const deadline = Date.now() + DEADLINE_MS;
    let docsDone = 0;
    let bytes = 0;
    let maxRss = 0;
    let maxDisk = 0;
    let stopped: string | undefined;
    const sampler = setInterval(() => {
      maxRss = Math.max(maxRss, gateway!.peakRssMb());
      maxDisk = Math.max(maxDisk, dirBytes(gateway!.dataDir!));
    }, 1000);
    const cpuBefore = cpuSeconds(gateway.pid);
    const started = performance.now();
    try {
      await eachLimited(
        Array.from({ length: DOCS / JOB_DOCS }, (_, job) => job),
        LANES,
        async (job) => {
          if (Date.now() > deadline) return void (stopped ??= 'abandoned at the deadline');
          if (dirBytes(gateway!.dataDir!) > DISK_LIMIT_BYTES) return void (stopped ??= 'abandoned: data directory over 12 GB');
          const submitted = await postJson(`${base}/api/batch/embed`, { model: MODEL, documents: jobTexts(job) });
          const status = await waitForJob(base, submitted.job_id, 50);
          if (status.progress.completed_items !== JOB_DOCS) throw new Error(`job ${job} ${status.status}: ${status.progress.completed_items} of ${JOB_DOCS}`);
          const response = await fetch(`${base}/api/batch/results/${submitted.job_id}?encoding_format=base64`);
          bytes += (await response.arrayBuffer()).byteLength;
          docsDone += JOB_DOCS;
        },
      );
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(gateway.pid) - cpuBefore;
    const capacity = NODES * (1000 / MS_PER_DOC);
    const rate = docsDone / seconds;
    const peak = Math.max(maxRss, gateway.peakRssMb());
    return [
      ...rows,
      ['bench client: documents done', `${fmt(docsDone)} / ${fmt(DOCS)}`, `${stopped ? `${stopped}; ` : ''}${fmt(DOCS / JOB_DOCS)} jobs of ${fmt(JOB_DOCS)}, ${LANES} at once, ${fmt(bytes / 1e6)} MB of base64 results downloaded`],
      ['bench client: end-to-end (docs/s)', fmt(rate), `${fmt(seconds, 1)} s, submit of the first job -> results of the last downloaded`],
      ['bench client: share of summed capacity', `${fmt((rate / capacity) * 100, 1)} %`, `${NODES} serial nodes x ${fmt(1000 / MS_PER_DOC)} docs/s; target >= 95 % ${verdict(rate >= 0.95 * capacity)}`],
      ['bench client: gateway CPU per document (us)', fmt((cpu / Math.max(1, docsDone)) * 1e6, 1), `user+sys ${fmt(cpu, 1)} s, 384 dims`],
      ['bench client: gateway peak RSS (MB)', fmt(peak), `target < 300 MB ${verdict(peak < 300)}`],
      ['bench client: data directory peak (GB)', fmt(maxDisk / 1e9, 1), 'database + WAL, sampled every second'],
    ];
  } finally {
    await gateway?.stop();
    for (const sim of sims) await sim.stop();
  }
}

/** `sollol embed` on a file of DOCS lines (one per document) through a fresh gateway: the user's whole job. */
async function throughCli(sims: readonly Proc[]): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-bench-moonshot-'));
  const gateway = await startGatewayProc(sims.flatMap((s) => ['--backend', s.url]));
  try {
    const input = path.join(dir, 'in.txt');
    const out = fs.createWriteStream(input);
    for (let job = 0; job < DOCS / JOB_DOCS; job++) out.write(`${jobTexts(job).join('\n')}\n`);
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    const output = path.join(dir, 'out.npy');
    const cpuBefore = cpuSeconds(gateway.pid);
    const run = await runCli(['embed', input, '-o', output, '--model', MODEL, '--gateway', gateway.url], DEADLINE_MS);
    const cpu = cpuSeconds(gateway.pid) - cpuBefore;
    const summary = /embedded ([\d,]+) of ([\d,]+) documents .* in ([\d.]+) s/.exec(run.stderr);
    if (run.code !== 0 || !summary) {
      return [['sollol embed: documents done', 'none', `exited ${run.code ?? 'at the deadline'}: ${run.stderr.slice(-300).replace(/\s+/g, ' ')}`]];
    }
    const done = Number(summary[1]!.replace(/,/g, ''));
    const seconds = Number(summary[3]);
    const rate = done / seconds;
    const capacity = NODES * (1000 / MS_PER_DOC);
    const size = fs.statSync(output).size;
    const gatewayPeak = gateway.peakRssMb();
    return [
      ['sollol embed: documents done', `${fmt(done)} / ${fmt(DOCS)}`, `${fmt(DOCS)} lines -> .npy (${fmt(size / 1e9, 2)} GB written)`],
      ['sollol embed: end-to-end (docs/s)', fmt(rate), `${fmt(seconds, 1)} s as the CLI reports it (${fmt(done / run.wallSeconds)} docs/s counting process start-up)`],
      ['sollol embed: share of summed capacity', `${fmt((rate / capacity) * 100, 1)} %`, `target >= 95 % ${verdict(rate >= 0.95 * capacity)}`],
      ['sollol embed: gateway CPU per document (us)', fmt((cpu / Math.max(1, done)) * 1e6, 1), `user+sys ${fmt(cpu, 1)} s; the CLI's own peak RSS ${fmt(run.peakRssMb)} MB`],
      ['sollol embed: gateway peak RSS (MB)', fmt(gatewayPeak), `target < 300 MB ${verdict(gatewayPeak < 300)}`],
    ];
  } finally {
    await gateway.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
