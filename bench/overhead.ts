/**
 * overhead: a 10,000-document job, 768-dim, through the gateway to a simulated node with
 * zero service time, against the same documents sent straight to the node with the same
 * chunking and the same number of calls in flight. Targets: gateway processing at 80% or
 * more of direct; submit to results downloaded under 3 s.
 */
import { Pool } from 'undici';
import { fmt, percentile, postJson, startGatewayProc, startSimProc, texts, waitForJob, type Row } from './lib.js';

const DOCS = 10_000;
const CHUNK = 64;
const IN_FLIGHT = 2;
const MODEL = 'nomic-embed-text';

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
  const documents = texts(DOCS);
  try {
    await direct(sim.url, documents); // warm the node's vector cache (its CPU must stay negligible) and the JIT
    const directSeconds = await direct(sim.url, documents);
    const gateway = await startGatewayProc(['--backend', sim.url, '--chunk-size', String(CHUNK), '--workers', String(IN_FLIGHT)]);
    try {
      // Warm-up texts differ from the measured ones: the content cache must not answer the measured job.
      const warm = await postJson(`${gateway.url}/api/batch/embed`, { model: MODEL, documents: texts(500, 'warm-up') });
      await waitForJob(gateway.url, warm.job_id);
      const polls: number[] = [];
      const submitted = performance.now();
      const job = await postJson(`${gateway.url}/api/batch/embed`, { model: MODEL, documents });
      const submitMs = performance.now() - submitted;
      const status = await waitForJob(gateway.url, job.job_id, 10, (ms) => polls.push(ms));
      const processed = performance.now();
      const response = await fetch(`${gateway.url}/api/batch/results/${job.job_id}`);
      const body = await response.arrayBuffer();
      const downloaded = performance.now();
      if (status.progress.completed_items !== DOCS) throw new Error(`gateway completed ${status.progress.completed_items} of ${DOCS}`);
      const gatewaySeconds = (processed - submitted) / 1000;
      const ratio = DOCS / gatewaySeconds / (DOCS / directSeconds);
      const total = (downloaded - submitted) / 1000;
      return [
        ['direct to the node (docs/s)', fmt(DOCS / directSeconds), `${CHUNK}-doc chunks, ${IN_FLIGHT} in flight`],
        ['through the gateway (docs/s)', fmt(DOCS / gatewaySeconds), 'submit -> completed'],
        ['gateway / direct', `${fmt(ratio * 100, 1)} %`, `target >= 80 % ${ratio >= 0.8 ? 'MET' : 'MISSED'}`],
        ['submit request (ms)', fmt(submitMs), '10,000 documents posted and admitted'],
        ['results download (s)', fmt((downloaded - processed) / 1000, 2), `${fmt(body.byteLength / 1e6, 1)} MB of JSON`],
        ['submit -> results downloaded (s)', fmt(total, 2), `target < 3 s ${total < 3 ? 'MET' : 'MISSED'}`],
        ['status poll p99 while running (ms)', fmt(percentile(polls, 99), 1), `${polls.length} polls`],
        ['gateway peak RSS (MB)', fmt(gateway.peakRssMb()), ''],
      ];
    } finally {
      await gateway.stop();
    }
  } finally {
    await sim.stop();
  }
}
