/**
 * overhead: a 10,000-document job, 768-dim, through the gateway to a simulated node with
 * zero service time, against the same documents sent straight to the node with the same
 * chunking and the same number of calls in flight, content cache on (the default). Each side
 * is timed RUNS times (fresh texts each gateway run, so the cache never answers) and the best
 * run kept: on a small shared machine one run mostly measures the neighbours.
 * Targets (issue 12): gateway processing at 90% or more of direct; submit to results
 * downloaded under 3 s.
 */
import { Pool } from 'undici';
import { cpuSeconds, fmt, percentile, postJson, startGatewayProc, startSimProc, texts, verdict, waitForJob, type Row } from './lib.js';

const DOCS = 10_000;
const CHUNK = 64;
const IN_FLIGHT = 2;
const MODEL = 'nomic-embed-text';
const RUNS = 2;

/** Sends chunks straight to the node, parsing each answer into float32 vectors as the gateway does. */
async function direct(nodeUrl: string, documents: string[]): Promise<number> {
  const pool = new Pool(nodeUrl, { connections: IN_FLIGHT });
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < documents.length) {
      const batch = documents.slice(next, (next += CHUNK));
      const response = await pool.request({ method: 'POST', path: '/api/embed', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, input: batch, truncate: true }) });
      const parsed = JSON.parse(await response.body.text()) as { embeddings: number[][] };
      parsed.embeddings.forEach((v) => Float32Array.from(v));
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = (performance.now() - started) / 1000;
  await pool.close();
  return seconds;
}

export async function benchOverhead(): Promise<Row[]> {
  const sim = await startSimProc(['--dims', '768']);
  const documents = (run: number): string[] => texts(DOCS, `overhead ${run}`);
  try {
    const directRuns: number[] = [];
    for (let run = 0; run < RUNS; run++) await direct(sim.url, documents(run)); // the node computes (and caches) each text once, and the JIT warms
    for (let run = 0; run < RUNS; run++) directRuns.push(await direct(sim.url, documents(run)));
    const directSeconds = Math.min(...directRuns);
    const gateway = await startGatewayProc(['--backend', sim.url, '--chunk-size', String(CHUNK), '--workers', String(IN_FLIGHT)]);
    try {
      // Warm-up texts differ from the measured ones: the content cache must not answer the measured job.
      const warm = await postJson(`${gateway.url}/api/batch/embed`, { model: MODEL, documents: texts(500, 'warm-up') });
      await waitForJob(gateway.url, warm.job_id);
      const runs: { seconds: number; submitMs: number; downloadSeconds: number; bytes: number; cpu: number; polls: number[] }[] = [];
      for (let run = 0; run < RUNS; run++) {
        const polls: number[] = [];
        const cpuBefore = cpuSeconds(gateway.pid);
        const submitted = performance.now();
        const job = await postJson(`${gateway.url}/api/batch/embed`, { model: MODEL, documents: documents(run) });
        const submitMs = performance.now() - submitted;
        const status = await waitForJob(gateway.url, job.job_id, 10, (ms) => polls.push(ms));
        const processed = performance.now();
        const cpu = cpuSeconds(gateway.pid) - cpuBefore;
        const response = await fetch(`${gateway.url}/api/batch/results/${job.job_id}`);
        const body = await response.arrayBuffer();
        const downloaded = performance.now();
        if (status.progress.completed_items !== DOCS) throw new Error(`gateway completed ${status.progress.completed_items} of ${DOCS}`);
        runs.push({ seconds: (processed - submitted) / 1000, submitMs, downloadSeconds: (downloaded - processed) / 1000, bytes: body.byteLength, cpu, polls });
      }
      const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
      const ratio = directSeconds / best.seconds;
      const total = best.seconds + best.downloadSeconds;
      const each = (values: number[], digits = 0): string => values.map((v) => fmt(v, digits)).join(', ');
      return [
        ['direct to the node (docs/s)', fmt(DOCS / directSeconds), `${CHUNK}-doc chunks, ${IN_FLIGHT} in flight; runs: ${each(directRuns.map((s) => DOCS / s))}`],
        ['through the gateway (docs/s)', fmt(DOCS / best.seconds), `submit -> completed, cache on; runs: ${each(runs.map((r) => DOCS / r.seconds))}`],
        ['gateway / direct', `${fmt(ratio * 100, 1)} %`, `target >= 90 % ${verdict(ratio >= 0.9)}`],
        ['gateway CPU per document (us)', fmt((best.cpu / DOCS) * 1e6, 1), `user+sys of the gateway process, submit -> completed; runs: ${each(runs.map((r) => (r.cpu / DOCS) * 1e6), 1)}`],
        ['submit request (ms)', fmt(best.submitMs), '10,000 documents posted and admitted'],
        ['results download (s)', fmt(best.downloadSeconds, 2), `${fmt(best.bytes / 1e6, 1)} MB of JSON`],
        ['submit -> results downloaded (s)', fmt(total, 2), `target < 3 s ${verdict(total < 3)}`],
        ['status poll p99 while running (ms)', fmt(percentile(best.polls, 99), 1), `${best.polls.length} polls`],
        ['gateway peak RSS (MB)', fmt(gateway.peakRssMb()), ''],
      ];
    } finally {
      await gateway.stop();
    }
  } finally {
    await sim.stop();
  }
}
