/**
 * embed-file: 200,000 lines through `sollol embed` (a subprocess, as a user runs it) to a
 * gateway in front of 4 serial simulated nodes at 1 ms per document (summed capacity 4,000
 * docs/s), output .npy; the CLI is the built one (dist/), as `npx sollol` runs it. Figures: documents/s against the nodes' summed capacity (target
 * >= 95 %), the CLI's peak RSS (target < 200 MB whatever the input size: the input is
 * streamed, results are appended as they come).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildDist, driveDirectly, fmt, runCli, startGatewayProc, startSimProc, texts, type Proc, type Row } from './lib.js';

const LINES = 200_000;
const NODES = 4;
const MS_PER_DOC = 1;
const DIMS = 128;
const MODEL = 'nomic-embed-text';

export async function benchEmbedFile(): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-bench-embed-'));
  const nodes: Proc[] = [];
  let gateway: Proc | undefined;
  try {
    const input = path.join(dir, 'in.txt');
    const out = fs.createWriteStream(input);
    for (let i = 0; i < LINES; i++) out.write(`line ${i}: a short passage about embeddings, batch processing and collections\n`);
    await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
    for (let i = 0; i < NODES; i++) nodes.push(await startSimProc(['--dims', String(DIMS), '--serial', '--delay-per-doc', String(MS_PER_DOC)]));
    gateway = await startGatewayProc([...nodes.flatMap((n) => ['--backend', n.url])]);
    // The CLI as users run it (`npx sollol`, `npm install -g .`): the built dist/, not tsx.
    buildDist();
    const output = path.join(dir, 'out.npy');
    const run = await runCli(['embed', input, '-o', output, '--model', MODEL, '--gateway', gateway.url]);
    if (run.code !== 0) throw new Error(`sollol embed exited ${run.code}: ${run.stderr.slice(-2000)}`);
    const summary = /embedded ([\d,]+) of ([\d,]+) documents .* in ([\d.]+) s/.exec(run.stderr);
    if (!summary || Number(summary[1]!.replace(/,/g, '')) !== LINES) throw new Error(`unexpected summary: ${run.stderr.slice(-500)}`);
    const runSeconds = Number(summary[3]);
    const docsPerSecond = LINES / runSeconds;
    const wallPerSecond = LINES / run.wallSeconds;
    const capacity = (NODES * 1000) / MS_PER_DOC;
    const ratio = docsPerSecond / capacity;
    const expectedBytes = 128 + LINES * DIMS * 4;
    const size = fs.statSync(output).size;
    if (size !== expectedBytes) throw new Error(`out.npy has ${size} bytes, expected ${expectedBytes}`);
    const direct = await driveDirectly(nodes, MODEL, texts(20_000, 'direct'), 64, false);
    return [
      [`sollol embed, ${fmt(LINES)} lines -> .npy (docs/s)`, fmt(docsPerSecond), `run time ${fmt(runSeconds, 1)} s as the CLI reports it (${fmt(wallPerSecond)} docs/s counting process start-up)`],
      ['share of the 4 serial nodes\' summed capacity', `${fmt(ratio * 100, 1)} %`, `capacity ${fmt(capacity)} docs/s (${MS_PER_DOC} ms/doc each); target >= 95 % ${ratio >= 0.95 ? 'MET' : 'MISSED'}`],
      ['the same nodes driven directly (docs/s)', fmt(direct), `${fmt((direct / capacity) * 100, 1)} % of nominal: what they deliver on this machine now (20,000 docs, chunks of 64, 2 calls in flight each); sollol embed / direct ${fmt((docsPerSecond / direct) * 100, 1)} %`],
      ['CLI peak RSS (MB)', fmt(run.peakRssMb), `target < 200 MB ${run.peakRssMb > 0 && run.peakRssMb < 200 ? 'MET' : 'MISSED'}`],
    ];
  } finally {
    await gateway?.stop();
    for (const node of nodes) await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
