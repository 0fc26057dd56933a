/**
 * results: downloading a finished 10,000 x 768 job (simulated node, no embedded model) as
 * JSON, NDJSON and base64, by one client and by four at once, with the gateway's peak RSS.
 * Each one-client download runs RUNS times and the fastest is judged (all printed).
 * Targets (issue 12): one client >= 250 MB/s as JSON and >= 500 MB/s as base64; gateway peak
 * RSS under 300 MB with four downloads at once; also four JSON at once within 8 s and base64
 * at least 3x smaller than JSON.
 */
import fs from 'node:fs';
import http from 'node:http';
import { cpuSeconds, fmt, postJson, startGatewayProc, startSimProc, texts, verdict, waitForJob, type Row } from './lib.js';

const DOCS = 10_000;
const DIMS = 768;
const MODEL = 'nomic-embed-text';
const RUNS = 2;

interface Download {
  readonly bytes: number;
  readonly seconds: number;
  /** Gateway CPU seconds (user + sys, all threads) while it ran; wall-clock figures suffer from other load, this less so. */
  cpu?: number;
}

/** The gateway's pid, for {@link withCpu}. */
let gatewayPid = 0;

/** Runs `work` and adds the gateway's CPU seconds spent meanwhile. */
async function withCpu(work: () => Promise<Download>): Promise<Download> {
  const before = cpuSeconds(gatewayPid);
  const result = await work();
  result.cpu = cpuSeconds(gatewayPid) - before;
  return result;
}

/** GETs `url` and counts the bytes as they arrive (nothing is kept, so the client stays small). */
function download(url: string, headers: Record<string, string> = {}): Promise<Download> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`${url} answered ${response.statusCode}`));
        return;
      }
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.once('end', () => resolve({ bytes, seconds: (performance.now() - started) / 1000 }));
      response.once('error', reject);
    }).once('error', reject);
  });
}

/** `clients` downloads at once: the time until the last one ends, and the bytes of one. */
async function downloadAll(url: string, clients: number, headers: Record<string, string> = {}): Promise<Download> {
  const started = performance.now();
  const all = await Promise.all(Array.from({ length: clients }, () => download(url, headers)));
  if (all.some((d) => d.bytes !== all[0]!.bytes)) throw new Error(`downloads of ${url} differ in size`);
  return { bytes: all[0]!.bytes, seconds: (performance.now() - started) / 1000 };
}

/**
 * Resets the process's peak RSS (VmHWM) to its current RSS, so that the peak measured next
 * is the downloads' own; false where /proc does not allow it.
 */
function resetPeakRss(pid: number): boolean {
  try {
    fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The fastest of RUNS downloads, and every run's MB/s. */
async function fastest(url: string, headers: Record<string, string> = {}): Promise<Download & { runs: string }> {
  const all: Download[] = [];
  for (let run = 0; run < RUNS; run++) all.push(await withCpu(() => download(url, headers)));
  const best = all.reduce((a, b) => (b.seconds < a.seconds ? b : a));
  return { ...best, runs: `${all.map((d) => fmt(d.bytes / 1e6 / d.seconds)).join(', ')} MB/s; gateway CPU ${all.map((d) => fmt(d.cpu ?? 0, 2)).join(', ')} s` };
}

const mbps = (d: Download): number => d.bytes / 1e6 / d.seconds;
const mb = (bytes: number): string => `${fmt(bytes / 1e6, 1)} MB`;

export async function benchResults(): Promise<Row[]> {
  const sim = await startSimProc(['--dims', String(DIMS)]);
  try {
    const gateway = await startGatewayProc(['--backend', sim.url]);
    gatewayPid = gateway.pid;
    try {
      const job = await postJson(`${gateway.url}/api/batch/embed`, { model: MODEL, documents: texts(DOCS) });
      const status = await waitForJob(gateway.url, job.job_id, 50);
      if (status.progress.completed_items !== DOCS || status.dimensions !== DIMS) {
        throw new Error(`job finished with ${status.progress.completed_items} items of ${status.dimensions} dims`);
      }
      const rssAfterJob = gateway.peakRssMb();
      const reset = resetPeakRss(gateway.pid);
      const base = `${gateway.url}/api/batch/results/${job.job_id}`;
      await download(`${base}?limit=1000`); // warm the JIT on a page, not the whole

      const json = await fastest(base);
      const ndjson = await fastest(base, { accept: 'application/x-ndjson' });
      const b64 = await fastest(`${base}?encoding_format=base64`);
      const b64Nd = await fastest(`${base}?format=ndjson&encoding_format=base64`);
      const page = await download(`${base}?offset=5000&limit=1000`);
      const fourJson = await withCpu(() => downloadAll(base, 4));
      const fourNd = await withCpu(() => downloadAll(base, 4, { accept: 'application/x-ndjson' }));
      const fourB64 = await withCpu(() => downloadAll(`${base}?encoding_format=base64`, 4));
      const peak = reset ? Math.max(rssAfterJob, gateway.peakRssMb()) : gateway.peakRssMb();
      const downloadsPeak = reset ? `${fmt(gateway.peakRssMb())} MB during the downloads alone` : 'peak not resettable here';
      const ratio = json.bytes / b64.bytes;

      return [
        ['job', `${fmt(DOCS)} x ${DIMS}`, `${MODEL} on a simulated node; gateway peak RSS up to the end of the job ${fmt(rssAfterJob)} MB`],
        ['JSON, one client (MB/s)', fmt(mbps(json)), `${mb(json.bytes)} in ${fmt(json.seconds, 2)} s; runs ${json.runs}; target >= 250 MB/s ${verdict(mbps(json) >= 250)}`],
        ['NDJSON (Accept), one client (MB/s)', fmt(mbps(ndjson)), `${mb(ndjson.bytes)} in ${fmt(ndjson.seconds, 2)} s; runs ${ndjson.runs}; target >= 250 MB/s ${verdict(mbps(ndjson) >= 250)}`],
        ['base64 JSON, one client (MB/s)', fmt(mbps(b64)), `${mb(b64.bytes)} in ${fmt(b64.seconds, 2)} s; runs ${b64.runs}; target >= 500 MB/s ${verdict(mbps(b64) >= 500)}`],
        ['base64 vs JSON size', `${fmt(ratio, 2)}x`, `smaller; target >= 3x ${verdict(ratio >= 3)}`],
        ['base64 NDJSON, one client (MB/s)', fmt(mbps(b64Nd)), `${mb(b64Nd.bytes)} in ${fmt(b64Nd.seconds, 2)} s; runs ${b64Nd.runs}; target >= 500 MB/s ${verdict(mbps(b64Nd) >= 500)}`],
        ['JSON page of 1,000 (s)', fmt(page.seconds, 2), `${mb(page.bytes)} (offset=5000&limit=1000)`],
        ['JSON, four clients at once (s)', fmt(fourJson.seconds, 2), `4 x ${mb(fourJson.bytes)}, ${fmt((4 * fourJson.bytes) / 1e6 / fourJson.seconds)} MB/s in all, gateway CPU ${fmt(fourJson.cpu ?? 0, 2)} s; target <= 8 s ${verdict(fourJson.seconds <= 8)}`],
        ['NDJSON, four clients at once (s)', fmt(fourNd.seconds, 2), `4 x ${mb(fourNd.bytes)}, gateway CPU ${fmt(fourNd.cpu ?? 0, 2)} s`],
        ['base64, four clients at once (s)', fmt(fourB64.seconds, 2), `4 x ${mb(fourB64.bytes)}, ${fmt((4 * fourB64.bytes) / 1e6 / fourB64.seconds)} MB/s in all, gateway CPU ${fmt(fourB64.cpu ?? 0, 2)} s`],
        ['gateway peak RSS (MB)', fmt(peak), `whole run, job included (${downloadsPeak}); target < 300 MB ${verdict(peak < 300)}`],
      ];
    } finally {
      await gateway.stop();
    }
  } finally {
    await sim.stop();
  }
}
