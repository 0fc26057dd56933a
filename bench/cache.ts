/**
 * cache: the same 10,000 documents submitted twice through the gateway; the second run is
 * answered by the content cache. Target: at least 10x faster, zero backend calls.
 */
import { fmt, getJson, postJson, startGatewayProc, startSimProc, texts, waitForJob, type Row } from './lib.js';

const DOCS = 10_000;
const MODEL = 'nomic-embed-text';

async function timedJob(base: string, documents: string[]): Promise<number> {
  const started = performance.now();
  const job = await postJson(`${base}/api/batch/embed`, { model: MODEL, documents });
  const status = await waitForJob(base, job.job_id, 5);
  if (status.progress.completed_items !== documents.length) throw new Error(`job completed ${status.progress.completed_items} of ${documents.length}`);
  return (performance.now() - started) / 1000;
}

export async function benchCache(): Promise<Row[]> {
  const sim = await startSimProc(['--dims', '768', '--delay-per-doc', '0.2']);
  const gateway = await startGatewayProc(['--backend', sim.url]);
  try {
    const documents = texts(DOCS, 'cache');
    const first = await timedJob(gateway.url, documents);
    const callsBefore = (await getJson(`${sim.url}/sim/stats`)).embedCalls as number;
    const second = await timedJob(gateway.url, documents);
    const callsAfter = (await getJson(`${sim.url}/sim/stats`)).embedCalls as number;
    const speedup = first / second;
    const cache = (await getJson(`${gateway.url}/api/stats`)).cache;
    return [
      ['first run (s)', fmt(first, 2), 'node costs 0.2 ms per document'],
      ['second run, same documents (s)', fmt(second, 3), 'answered by the content cache'],
      ['speed-up', `${fmt(speedup, 1)}x`, `target >= 10x ${speedup >= 10 ? 'MET' : 'MISSED'}`],
      ['backend calls in the second run', String(callsAfter - callsBefore), `target 0 ${callsAfter === callsBefore ? 'MET' : 'MISSED'}`],
      ['cache entries / MB', `${fmt(cache.entries)} / ${fmt(cache.bytes / 1e6, 1)}`, `hits ${fmt(cache.hits)}`],
    ];
  } finally {
    await gateway.stop();
    await sim.stop();
  }
}
