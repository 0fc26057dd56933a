/**
 * tail: how much of the nodes' summed capacity one job gets to completion, when the last
 * chunks could leave nodes idle. Serial simulated nodes (one call at a time, as Ollama):
 * - 4 nodes at 1 ms/doc, 4,000 documents (capacity 4,000 docs/s): target >= 97 %;
 * - a fast and a slow node (1 and 10 ms/doc, capacity 1,100 docs/s), 4,000 documents:
 *   target >= 95 %.
 * Default gateway flags (chunking and workers chosen by the gateway). Each case runs RUNS
 * times on fresh texts (the content cache never answers) and keeps the best run. A run lasts
 * from just before the submit until the job's `completed_at` (the gateway's clock: the same
 * machine's), so the figure is the gateway's and not this client's poll interval; the client
 * polls every 50 ms only to learn that the job ended, which keeps status reads off the
 * gateway's back while it works.
 * Also printed, for reference: what the same nodes deliver driven directly (each node alone,
 * two calls in flight of the gateway's default 64 documents, as the gateway drives it): the
 * simulated node charges its own work per call against its budget (src/sim RunnerClock), so
 * this is close to nominal unless the machine is short of CPU; the target stays against the
 * nominal capacity.
 */
import { eachLimited, fmt, postJson, runJob, startGatewayProc, startSimProc, texts, verdict, type Proc, type Row } from './lib.js';

const DOCS = 4_000;
const RUNS = 2;
const MODEL = 'nomic-embed-text';
const DIRECT_CHUNK = 64;
const DIRECT_IN_FLIGHT = 2;
/** How often the client asks whether the job ended (the figure does not depend on it). */
const POLL_MS = 50;

/** Docs/s one node delivers driven directly: `docs` fresh texts, DIRECT_IN_FLIGHT calls of DIRECT_CHUNK at once. */
async function directRate(url: string, docs: number, label: string): Promise<number> {
  const all = texts(docs, label);
  const chunks = Array.from({ length: Math.ceil(docs / DIRECT_CHUNK) }, (_, k) => all.slice(k * DIRECT_CHUNK, (k + 1) * DIRECT_CHUNK));
  const started = performance.now();
  await eachLimited(chunks, DIRECT_IN_FLIGHT, async (input) => {
    const answer = await postJson(`${url}/api/embed`, { model: MODEL, input });
    if (answer.embeddings.length !== input.length) throw new Error(`direct call answered ${answer.embeddings.length} of ${input.length}`);
  });
  return docs / ((performance.now() - started) / 1000);
}

async function tailCase(label: string, msPerDoc: number[], target: number): Promise<Row[]> {
  const sims: Proc[] = [];
  let gateway: Proc | undefined;
  try {
    for (const ms of msPerDoc) sims.push(await startSimProc(['--dims', '768', '--serial', '--delay-per-doc', String(ms)]));
    gateway = await startGatewayProc(sims.flatMap((s) => ['--backend', s.url]));
    await runJob(gateway.url, MODEL, texts(500, `tail warm-up ${label}`));
    const capacity = msPerDoc.reduce((sum, ms) => sum + 1000 / ms, 0);
    const rates: number[] = [];
    const submits: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const job = await runJob(gateway.url, MODEL, texts(DOCS, `tail ${label} ${run}`), POLL_MS);
      rates.push(DOCS / job.gatewaySeconds);
      submits.push(job.submitSeconds * 1000);
    }
    const best = Math.max(...rates);
    const share = best / capacity;
    // Each node alone for about one second of its nominal time (at least two chunks).
    let delivered = 0;
    for (const [i, sim] of sims.entries()) delivered += await directRate(sim.url, Math.max(2 * DIRECT_CHUNK, Math.round(1000 / msPerDoc[i]!)), `tail direct ${label} ${i}`);
    return [
      [`${label}: docs/s to completion`, fmt(best), `${fmt(DOCS)} documents, submit to the gateway's completed_at; runs: ${rates.map((r) => fmt(r)).join(', ')}; summed capacity ${fmt(capacity)} docs/s`],
      [`${label}: submit round trip`, `${fmt(Math.min(...submits))} ms`, `runs: ${submits.map((ms) => fmt(ms)).join(', ')} ms (parse + admission of ${fmt(DOCS)} documents; the head start's first calls run meanwhile)`],
      [`${label}: nodes driven directly`, fmt(delivered), `docs/s summed over the nodes each alone (${DIRECT_IN_FLIGHT} x ${DIRECT_CHUNK} in flight): ${fmt((delivered / capacity) * 100, 1)} % of nominal; the gateway got ${fmt((best / delivered) * 100, 1)} % of it`],
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
