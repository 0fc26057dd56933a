/**
 * generate: 2,000 prompts as one batch generate job, through the gateway, to 4 simulated nodes
 * with 2 parallel generation slots each (`--generate-parallel 2`, `?parallel=2` on --backend),
 * every generation costing 20 tokens x 5 ms = 100 ms of a slot. Summed slot capacity is
 * 8 slots / 0.1 s = 80 generations per second; the figure is the job's throughput against it
 * (target >= 95 %: the pool keeps every slot full). Meanwhile one client makes a sync
 * `/api/embed` call every 10 ms: their p99 shows that generations do not hold up embedding
 * (target < 50 ms).
 */
import { fmt, getJson, percentile, postJson, startGatewayProc, startSimProc, waitForJob, type Proc, type Row } from './lib.js';

const PROMPTS = 2_000;
const NODES = 4;
const PARALLEL = 2;
const TOKENS = 20;
const MS_PER_TOKEN = 5;
const CHAT_MODEL = 'llama3.2';
const EMBED_MODEL = 'nomic-embed-text';
/** Pause between the sync embed calls: a steady interactive client, not a flood competing for the 2 cores. */
const EMBED_EVERY_MS = 10;

export async function benchGenerate(): Promise<Row[]> {
  const procs: Proc[] = [];
  try {
    const simFlags = ['--model', CHAT_MODEL, '--model', EMBED_MODEL, '--generate-parallel', String(PARALLEL), '--reply-tokens', String(TOKENS), '--delay-per-token', String(MS_PER_TOKEN)];
    const sims = await Promise.all(Array.from({ length: NODES }, () => startSimProc(simFlags)));
    procs.push(...sims);
    const gateway = await startGatewayProc(sims.flatMap((s) => ['--backend', `${s.url}?parallel=${PARALLEL}`]));
    procs.push(gateway);
    const base = gateway.url;
    // Warm-up: every node probed and the model "loaded".
    await postJson(`${base}/api/generate`, { model: CHAT_MODEL, prompt: 'warm up', stream: false });

    const prompts = Array.from({ length: PROMPTS }, (_, i) => `bench prompt ${i}: write a short line about batch inference on your own nodes`);
    let running = true;
    const embedMs: number[] = [];
    const embedLoop = (async () => {
      for (let i = 0; running; i++) {
        const started = performance.now();
        await postJson(`${base}/api/embed`, { model: EMBED_MODEL, input: [`sync embed ${i}`] });
        embedMs.push(performance.now() - started);
        await new Promise((resolve) => setTimeout(resolve, EMBED_EVERY_MS));
      }
    })();
    const started = performance.now();
    const job = await postJson(`${base}/api/batch/generate`, { model: CHAT_MODEL, prompts });
    const status = await waitForJob(base, job.job_id, 50);
    const seconds = (performance.now() - started) / 1000;
    running = false;
    await embedLoop;
    const results = await getJson(`${base}/api/batch/results/${job.job_id}?limit=1`);

    const capacity = (NODES * PARALLEL * 1000) / (TOKENS * MS_PER_TOKEN);
    const throughput = status.progress.completed_items / seconds;
    const share = (100 * throughput) / capacity;
    const p99 = percentile(embedMs, 99);
    return [
      ['job', `${status.status}, ${fmt(status.progress.completed_items)} done, ${fmt(status.progress.failed_items)} failed`, results.results?.[0]?.eval_count === TOKENS ? 'answers checked' : 'UNEXPECTED ANSWER'],
      ['elapsed', `${fmt(seconds, 2)} s`, `ideal ${fmt(PROMPTS / capacity, 2)} s`],
      ['throughput', `${fmt(throughput, 1)} /s`, `summed slot capacity ${fmt(capacity)} /s`],
      ['throughput / capacity', `${fmt(share, 1)} %`, `target >= 95 %: ${share >= 95 ? 'MET' : 'MISSED'}`],
      ['sync /api/embed during the job', `p50 ${fmt(percentile(embedMs, 50), 1)} ms, p99 ${fmt(p99, 1)} ms`, `${fmt(embedMs.length)} calls; target p99 < 50 ms: ${p99 < 50 ? 'MET' : 'MISSED'}`],
      ['gateway peak RSS', `${fmt(gateway.peakRssMb())} MB`, ''],
    ];
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}
