/**
 * `npm run bench -- cpu` for several builds alternated, on a shared, noisy machine: each round
 * starts a fresh gateway from each dist/ directory in turn (the order swapped every round), in
 * front of one zero-cost simulated node (768 dims, from the first build), warms it with 1,000
 * documents, then runs 3 jobs of 10,000 one after the other and reads the gateway's user + system
 * CPU from /proc: for the whole process and per thread (the main thread is `main`; the others by
 * their thread id's offset from the process id: the store's writer and its checkpointer start
 * last). Medians per build at the end.
 *
 * `node --import tsx bench/cpuAb.ts ROUNDS DIST [DIST ...]`; builds as in bench/storeAb.ts.
 * GATEWAY_FLAGS (space-separated) are added to every gateway's command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuSeconds, runJob, texts } from './lib.js';

const DOCS = 10_000;
const JOBS = 3;
const MODEL = 'nomic-embed-text';

const [roundsArg, ...dists] = process.argv.slice(2);
const rounds = Number(roundsArg);
if (!Number.isInteger(rounds) || rounds < 1 || dists.length === 0) {
  console.error('usage: node --import tsx bench/cpuAb.ts ROUNDS DIST [DIST ...]');
  process.exit(2);
}
const extraFlags = (process.env.GATEWAY_FLAGS ?? '').split(' ').filter(Boolean);

function start(args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[\d.:]+)/.exec(output);
      if (match) resolve({ url: match[1]!, child });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${output}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** CPU seconds per thread of `pid`, by thread id. */
function threadSeconds(pid: number): Map<number, number> {
  const seconds = new Map<number, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      seconds.set(Number(tid), (Number(fields[11]) + Number(fields[12])) / 100);
    } catch {
      // the thread ended meanwhile
    }
  }
  return seconds;
}

const sim = await start([path.join(dists[0]!, 'cli/main.js'), 'sim', '--port', '0', '--dims', '768']);
const results = new Map<string, number[]>();
try {
  for (let round = 0; round < rounds; round++) {
    for (const dist of round % 2 ? [...dists].reverse() : dists) {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-cpu-ab-'));
      const gateway = await start([path.join(dist, 'cli/main.js'), 'up', '--port', '0', '--data-dir', dataDir, '--backend', sim.url, ...extraFlags]);
      try {
        await runJob(gateway.url, MODEL, texts(1000, `cpu ab warm-up ${round}`));
        const pid = gateway.child.pid!;
        const before = cpuSeconds(pid);
        const threadsBefore = threadSeconds(pid);
        for (let job = 0; job < JOBS; job++) await runJob(gateway.url, MODEL, texts(DOCS, `cpu ab ${round} ${job} ${dist}`), 20);
        const usPerDoc = ((cpuSeconds(pid) - before) / (DOCS * JOBS)) * 1e6;
        const threads = [...threadSeconds(pid)]
          .map(([tid, s]) => [tid === pid ? 'main' : `+${tid - pid}`, ((s - (threadsBefore.get(tid) ?? 0)) / (DOCS * JOBS)) * 1e6] as const)
          .filter(([, us]) => us >= 0.5)
          .sort((a, b) => b[1] - a[1]);
        results.set(dist, [...(results.get(dist) ?? []), usPerDoc]);
        console.log(`round ${round} ${dist}: ${usPerDoc.toFixed(1)} us/doc; threads ${threads.map(([name, us]) => `${name}=${us.toFixed(1)}`).join(' ')}; load ${os.loadavg()[0]!.toFixed(1)}`);
      } finally {
        await stop(gateway.child);
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    }
  }
} finally {
  await stop(sim.child);
}
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
for (const [dist, values] of results) console.log(`${dist}: median ${median(values).toFixed(1)} us/doc (${values.map((v) => v.toFixed(1)).join(', ')})`);
