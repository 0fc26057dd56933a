/**
 * cpu: the gateway's own CPU per document. A gateway with default flags in front of one
 * zero-cost simulated node (768 dims) runs JOBS jobs of 10,000 unique documents one after
 * the other; user + system CPU seconds of the gateway process (all its threads, read from
 * /proc) over those jobs, divided by the documents. Target (issue 12): <= 40 us per document.
 * Run twice on separate texts; both figures printed, the lower one judged.
 */
import { cpuSeconds, fmt, runJob, startGatewayProc, startSimProc, texts, verdict, type Row } from './lib.js';

const DOCS = 10_000;
const JOBS = 3;
const ROUNDS = 2;
const MODEL = 'nomic-embed-text';

export async function benchCpu(): Promise<Row[]> {
  const sim = await startSimProc(['--dims', '768']);
  const gateway = await startGatewayProc(['--backend', sim.url]);
  try {
    await runJob(gateway.url, MODEL, texts(1000, 'cpu warm-up'));
    const perDoc: number[] = [];
    const rates: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const before = cpuSeconds(gateway.pid);
      const started = performance.now();
      for (let job = 0; job < JOBS; job++) await runJob(gateway.url, MODEL, texts(DOCS, `cpu ${round} ${job}`), 20);
      const seconds = (performance.now() - started) / 1000;
      perDoc.push(((cpuSeconds(gateway.pid) - before) / (DOCS * JOBS)) * 1e6);
      rates.push((DOCS * JOBS) / seconds);
    }
    const best = Math.min(...perDoc);
    return [
      ['gateway CPU per document (us)', fmt(best, 1), `${JOBS} x ${fmt(DOCS)} x 768, zero-cost node; rounds: ${perDoc.map((v) => fmt(v, 1)).join(', ')}; target <= 40 us ${verdict(best <= 40)}`],
      ['throughput meanwhile (docs/s)', fmt(Math.max(...rates)), `rounds: ${rates.map((v) => fmt(v)).join(', ')}`],
      ['gateway peak RSS (MB)', fmt(gateway.peakRssMb()), ''],
    ];
  } finally {
    await gateway.stop();
    await sim.stop();
  }
}
