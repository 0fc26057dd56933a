/**
 * embedded: documents/s through the gateway with the embedded model against the model called
 * directly in-process on the same 2,000 texts, same threads and batch size on both sides
 * (target: 90% or more); and responsiveness: p50/p99 of GET /api/batch/jobs/{id} while that
 * job runs (target p99 under 50 ms).
 */
import { benchTexts, measureEmbeddedDirect } from './embeddedDirect.js';
import { fmt, percentile, postJson, printTable, startGatewayProc, waitForJob, type Row } from './lib.js';

const DOCS = 2000;
const THREADS = 1;
const BATCH = 32;

export async function benchEmbedded(): Promise<Row[]> {
  const texts = benchTexts(DOCS);
  const direct = await measureEmbeddedDirect(texts, THREADS, BATCH);
  const gateway = await startGatewayProc(['--backend', 'embedded', '--embedded-threads', String(THREADS), '--chunk-size', String(BATCH)]);
  try {
    const warm = await postJson(`${gateway.url}/api/batch/embed`, { model: 'use-lite', documents: texts.slice(0, BATCH * THREADS) });
    await waitForJob(gateway.url, warm.job_id);
    const polls: number[] = [];
    const started = performance.now();
    const job = await postJson(`${gateway.url}/api/batch/embed`, { model: 'use-lite', documents: texts });
    const status = await waitForJob(gateway.url, job.job_id, 20, (ms) => polls.push(ms));
    const seconds = (performance.now() - started) / 1000;
    if (status.progress.completed_items !== DOCS) throw new Error(`gateway completed ${status.progress.completed_items} of ${DOCS}`);
    const gatewayRate = DOCS / seconds;
    const ratio = gatewayRate / direct.docsPerSecond;
    const p99 = percentile(polls, 99);
    return [
      ['model called directly (docs/s)', fmt(direct.docsPerSecond, 1), `${THREADS} thread, batches of ${BATCH}`],
      ['through the gateway (docs/s)', fmt(gatewayRate, 1), 'submit -> completed'],
      ['gateway / direct', `${fmt(ratio * 100, 1)} %`, `target >= 90 % ${ratio >= 0.9 ? 'MET' : 'MISSED'}`],
      ['status p50 while embedding (ms)', fmt(percentile(polls, 50), 1), `${polls.length} polls`],
      ['status p99 while embedding (ms)', fmt(p99, 1), `target < 50 ms ${p99 < 50 ? 'MET' : 'MISSED'}`],
      ['gateway peak RSS (MB)', fmt(gateway.peakRssMb()), ''],
    ];
  } finally {
    await gateway.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) printTable('embedded', await benchEmbedded());
