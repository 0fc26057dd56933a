/**
 * tail: how much of the nodes' summed capacity one job gets to completion, when the last
 * chunks could leave nodes idle. Serial simulated nodes (one call at a time, as Ollama):
 * - 4 nodes at 1 ms/doc, 4,000 documents (capacity 4,000 docs/s): target >= 97 %;
 * - a fast and a slow node (1 and 10 ms/doc, capacity 1,100 docs/s), 4,000 documents:
 *   target >= 95 %.
 * Default gateway flags (chunking and workers chosen by the gateway). Each case runs RUNS
 * times on fresh texts (the content cache never answers) and keeps the best run.
 */
import { fmt, runJob, startGatewayProc, startSimProc, texts, verdict, type Proc, type Row } from './lib.js';

const DOCS = 4_000;
const RUNS = 2;
const MODEL = 'nomic-embed-text';

async function tailCase(label: string, msPerDoc: number[], target: number): Promise<Row[]> {
  const sims: Proc[] = [];
  let gateway: Proc | undefined;
  try {
    for (const ms of msPerDoc) sims.push(await startSimProc(['--dims', '768', '--serial', '--delay-per-doc', String(ms)]));
    gateway = await startGatewayProc(sims.flatMap((s) => ['--backend', s.url]));
    await runJob(gateway.url, MODEL, texts(500, `tail warm-up ${label}`));
    const capacity = msPerDoc.reduce((sum, ms) => sum + 1000 / ms, 0);
    const rates: number[] = [];
    for (let run = 0; run < RUNS; run++) rates.push(DOCS / (await runJob(gateway.url, MODEL, texts(DOCS, `tail ${label} ${run}`), 5)).seconds);
    const best = Math.max(...rates);
    const share = best / capacity;
    return [
      [`${label}: docs/s to completion`, fmt(best), `${fmt(DOCS)} documents; runs: ${rates.map((r) => fmt(r)).join(', ')}; summed capacity ${fmt(capacity)} docs/s`],
      [`${label}: share of summed capacity`, `${fmt(share * 100, 1)} %`, `target >= ${target} % ${verdict(share * 100 >= target)}`],
    ];
  } finally {
    await gateway?.stop();
    for (const sim of sims) await sim.stop();
  }
}

export async function benchTail(): Promise<Row[]> {
  return [...(await tailCase('4 serial nodes, 1 ms/doc', [1, 1, 1, 1], 97)), ...(await tailCase('fast + slow node, 1 and 10 ms/doc', [1, 10], 95))];
}
