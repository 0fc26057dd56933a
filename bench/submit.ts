/**
 * submit: what one submit costs the gateway before any node works: the round trip of
 * POST /api/batch/embed with 4,000 and with 10,000 documents (the client's serialization,
 * body read, JSON parse, schema validation, the document-length hook, JobManager.submit and
 * the store's admission in one transaction, the answer), and the gateway's CPU (user + sys,
 * /proc) per submitted document over those submits. The node is a serial simulated one at
 * 1 s/doc, so the job's first chunks are sent but none comes back while this measures; each
 * job is cancelled after its submit. The tail scenario pays this round trip with every node
 * idle (4 nodes at 1 ms/doc, 4,000 documents: each 10 ms of it is 1 % of the job).
 * Fresh texts every submit (the content cache never answers). RUNS submits per size.
 */
import { cpuSeconds, fmt, percentile, postJson, startGatewayProc, startSimProc, texts, type Proc, type Row } from './lib.js';

const SIZES = [4_000, 10_000];
const RUNS = 8;
const MODEL = 'nomic-embed-text';

export interface SubmitFigures {
  /** Round trip of each submit, ms. */
  readonly ms: number[];
  /** Gateway CPU (user + sys) per submitted document over all the submits, us. */
  readonly cpuUsPerDoc: number;
}

/** `runs` submits of `docs` fresh documents to `gateway`, each cancelled once answered. */
export async function measureSubmits(gateway: Proc, docs: number, runs: number, label: string): Promise<SubmitFigures> {
  const ms: number[] = [];
  let cpu = 0;
  for (let run = 0; run < runs; run++) {
    const documents = texts(docs, `submit ${label} ${docs} ${run} ${Date.now()}`);
    const before = cpuSeconds(gateway.pid);
    const started = performance.now();
    const job = await postJson(`${gateway.url}/api/batch/embed`, { model: MODEL, documents });
    ms.push(performance.now() - started);
    cpu += cpuSeconds(gateway.pid) - before;
    await fetch(`${gateway.url}/api/batch/jobs/${job.job_id}`, { method: 'DELETE' });
  }
  return { ms, cpuUsPerDoc: (cpu / (docs * runs)) * 1e6 };
}

export async function benchSubmit(): Promise<Row[]> {
  const sim = await startSimProc(['--dims', '768', '--serial', '--delay-per-doc', '1000']);
  const gateway = await startGatewayProc(['--backend', sim.url]);
  try {
    await measureSubmits(gateway, 500, 3, 'warm-up');
    const rows: Row[] = [];
    for (const docs of SIZES) {
      const { ms, cpuUsPerDoc } = await measureSubmits(gateway, docs, RUNS, 'bench');
      rows.push(
        [`${fmt(docs)} documents: submit round trip`, `${fmt(Math.min(...ms), 1)} ms`, `best of ${RUNS}; median ${fmt(percentile(ms, 50), 1)} ms; ${fmt((Math.min(...ms) * 1000) / docs, 2)} us/doc`],
        [`${fmt(docs)} documents: gateway CPU per submitted document`, `${fmt(cpuUsPerDoc, 1)} us`, `user + sys over the ${RUNS} submits (10 ms clock ticks)`],
      );
    }
    return rows;
  } finally {
    await gateway.stop();
    await sim.stop();
  }
}
