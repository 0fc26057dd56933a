/**
 * load: 50 concurrent clients on loopback submit 200 jobs of 1,000 documents (200,000 in all,
 * unique texts so the content cache cannot answer them) to a gateway (default flags, no API
 * keys) in front of 2 simulated nodes (768 dimensions), each client polling its job's status
 * with backoff until it is finished, then taking the next job. Two passes: nodes with no service
 * time (the gateway itself is the bottleneck: its worst case), and nodes taking 2 ms per document
 * (a GPU-class Ollama node; the gateway keeps up). Each pass is abandoned after 5 minutes.
 * Reports per pass: jobs completed, 5xx answers (must be 0), status-route latency p50/p99,
 * documents per second, gateway peak RSS. Targets (issue 12): throughput >= 80 % of the rate of
 * one 10,000-document job alone on the same gateway (measured first, in the same pass); status
 * p99 < 25 ms and max < 100 ms; submit p99 < 150 ms; gateway RSS < 300 MB.
 */
import { setMaxListeners } from 'node:events';
import { Agent, request } from 'undici';
import { fmt, percentile, runJob, startGatewayProc, startSimProc, texts, verdict, type Proc, type Row } from './lib.js';

const CLIENTS = 50;
const JOBS = 200;
const DOCS_PER_JOB = 1_000;
const DIMS = 768;
const NODES = 2;
const DEADLINE_MS = 5 * 60_000;
const MODEL = 'nomic-embed-text';
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

interface Tally {
  statusMs: number[];
  submitMs: number[];
  fiveXx: number;
  tooMany: number;
  otherErrors: string[];
  completed: number;
  failed: number;
  docsCompleted: number;
}

/** One request; counts 5xx (and anything unexpected) in the tally. */
async function send(agent: Agent, url: string, tally: Tally, signal: AbortSignal, body?: string): Promise<{ status: number; json: any; retryAfter: number }> {
  const response = await request(url, {
    dispatcher: agent,
    method: body === undefined ? 'GET' : 'POST',
    signal,
    ...(body === undefined ? {} : { body, headers: { 'content-type': 'application/json' } }),
  });
  const text = await response.body.text();
  if (response.statusCode >= 500) tally.fiveXx++;
  const retryAfter = Number(response.headers['retry-after'] ?? 1);
  return { status: response.statusCode, json: text === '' ? undefined : JSON.parse(text), retryAfter: Number.isFinite(retryAfter) ? retryAfter : 1 };
}

function jobDocuments(job: number): string[] {
  return Array.from({ length: DOCS_PER_JOB }, (_, i) => `load job ${job} document ${i}: a short passage about embeddings, batches and the nodes that serve them`);
}

/** One client: takes the next job number, submits it, polls with backoff until finished, repeats. */
async function client(base: string, agent: Agent, next: () => number | undefined, tally: Tally, signal: AbortSignal): Promise<void> {
  for (let job = next(); job !== undefined && !signal.aborted; job = next()) {
    const body = JSON.stringify({ model: MODEL, documents: jobDocuments(job), metadata: { bench: 'load', job } });
    let jobId: string | undefined;
    while (jobId === undefined && !signal.aborted) {
      const started = performance.now();
      const answer = await send(agent, `${base}/api/batch/embed`, tally, signal, body);
      tally.submitMs.push(performance.now() - started);
      if (answer.status === 200) jobId = answer.json.job_id;
      else if (answer.status === 429) {
        tally.tooMany++;
        await new Promise((resolve) => setTimeout(resolve, answer.retryAfter * 1000));
      } else {
        tally.otherErrors.push(`submit ${answer.status} ${JSON.stringify(answer.json)}`);
        break;
      }
    }
    if (jobId === undefined) continue;
    for (let wait = 20; !signal.aborted; wait = Math.min(500, Math.round(wait * 1.5))) {
      await new Promise((resolve) => setTimeout(resolve, wait));
      const started = performance.now();
      const answer = await send(agent, `${base}/api/batch/jobs/${jobId}`, tally, signal);
      tally.statusMs.push(performance.now() - started);
      if (answer.status !== 200) {
        tally.otherErrors.push(`status ${answer.status} ${JSON.stringify(answer.json)}`);
        break;
      }
      if (TERMINAL.has(answer.json.status)) {
        if (answer.json.status === 'completed' && answer.json.progress.failed_items === 0) tally.completed++;
        else tally.failed++;
        tally.docsCompleted += answer.json.progress.completed_items;
        break;
      }
    }
  }
}

/** `SOLLOL_BENCH_LOAD_PASS=zero-cost` (or `2ms`) runs that pass alone, for A/B runs. */
export async function benchLoad(): Promise<Row[]> {
  const only = process.env.SOLLOL_BENCH_LOAD_PASS;
  return [
    ...(only === undefined || only === 'zero-cost' ? await loadPass('zero-cost nodes', []) : []),
    ...(only === undefined || only === '2ms' ? await loadPass('2 ms/doc nodes', ['--delay-per-doc', '2']) : []),
  ];
}

async function loadPass(label: string, simFlags: string[]): Promise<Row[]> {
  const sims: Proc[] = [];
  let gateway: Proc | undefined;
  const agent = new Agent({ connections: CLIENTS + 8, keepAliveTimeout: 30_000 });
  try {
    for (let i = 0; i < NODES; i++) sims.push(await startSimProc(['--dims', String(DIMS), ...simFlags]));
    gateway = await startGatewayProc(sims.flatMap((s) => ['--backend', s.url]));
    const base = gateway.url;
    await runJob(base, MODEL, texts(1000, `load warm-up ${label}`));
    const single = await runJob(base, MODEL, texts(10_000, `load single ${label}`));
    const singleRate = 10_000 / single.seconds;
    const tally: Tally = { statusMs: [], submitMs: [], fiveXx: 0, tooMany: 0, otherErrors: [], completed: 0, failed: 0, docsCompleted: 0 };
    let issued = 0;
    const next = (): number | undefined => (issued < JOBS ? issued++ : undefined);
    const deadline = AbortSignal.timeout(DEADLINE_MS);
    setMaxListeners(CLIENTS * 4, deadline);
    const started = performance.now();
    const outcomes = await Promise.allSettled(Array.from({ length: CLIENTS }, () => client(base, agent, next, tally, deadline)));
    const seconds = (performance.now() - started) / 1000;
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected' && !deadline.aborted) tally.otherErrors.push(`client: ${String(outcome.reason)}`);
    }
    const stats = (await send(agent, `${base}/api/stats`, tally, AbortSignal.timeout(10_000))).json;
    const p99 = percentile(tally.statusMs, 99);
    const statusMax = Math.max(...tally.statusMs);
    const submitP99 = percentile(tally.submitMs, 99);
    const rate = tally.docsCompleted / seconds;
    const peak = gateway.peakRssMb();
    const allDone = tally.completed === JOBS;
    return [
      [`${label}: jobs completed`, `${fmt(tally.completed)} / ${fmt(JOBS)}`, `${allDone ? 'every job' : 'NOT every job'}${deadline.aborted ? ', abandoned at the 5 min deadline' : ''}; failed or partial: ${tally.failed}`],
      [`${label}: 5xx answers`, fmt(tally.fiveXx), `must be 0 ${tally.fiveXx === 0 ? 'MET' : 'MISSED'}; 429 (retried): ${tally.tooMany}; other errors: ${tally.otherErrors.length}${tally.otherErrors[0] ? ` (first: ${tally.otherErrors[0].slice(0, 120)})` : ''}`],
      [`${label}: status p50 (ms)`, fmt(percentile(tally.statusMs, 50), 1), `${fmt(tally.statusMs.length)} polls by ${CLIENTS} clients, backoff 20 ms x1.5 up to 500 ms`],
      [`${label}: status p99 (ms)`, fmt(p99, 1), `target < 25 ms ${verdict(p99 < 25)}; max ${fmt(statusMax, 1)} ms, target < 100 ms ${verdict(statusMax < 100)}`],
      [`${label}: submit p50 / p99 (ms)`, `${fmt(percentile(tally.submitMs, 50), 1)} / ${fmt(submitP99, 1)}`, `${fmt(DOCS_PER_JOB)} documents per submit; p99 target < 150 ms ${verdict(submitP99 < 150)}`],
      [`${label}: throughput (docs/s)`, fmt(rate), `${fmt(tally.docsCompleted)} documents x ${DIMS} dims in ${fmt(seconds, 1)} s, ${NODES} nodes`],
      [`${label}: one 10,000-doc job alone (docs/s)`, fmt(singleRate), `load / alone ${fmt((rate / singleRate) * 100, 1)} %, target >= 80 % ${verdict(rate >= 0.8 * singleRate)}`],
      [`${label}: gateway peak RSS (MB)`, fmt(peak), `target < 300 MB ${verdict(peak < 300)}; stored jobs ${stats?.batch_jobs?.stored_jobs ?? '?'}, cache hits ${stats?.cache?.hits ?? '?'}`],
    ];
  } finally {
    await agent.close();
    await gateway?.stop();
    for (const sim of sims) await sim.stop();
  }
}
