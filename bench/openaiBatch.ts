/**
 * openai-batch (opt-in: `npm run bench -- openai-batch`): an OpenAI Batch API embeddings batch
 * at OpenAI's own bound, 25,000 lines of 2 inputs (50,000 inputs), 768 dims, through a fresh
 * gateway (default flags) in front of one zero-cost simulated node: upload the input file,
 * create the batch, poll until it completes, download the output file. Prints the time to
 * completion, the output's size and download rate, and the gateway's peak RSS (target < 300 MB,
 * issue 12's memory rule). The output is checked line by line (a 200 with 2 embeddings each).
 * Before the finaliser wrote files in chunks this batch peaked at 2.1 GB; before it read results
 * a page at a time and kept lines as bytes, a larger one never completed.
 */
import { fmt, startGatewayProc, startSimProc, verdict, type Row } from './lib.js';

const LINES = 25_000;
const MODEL = 'nomic-embed-text';
const DEADLINE_MS = 10 * 60_000;

export async function benchOpenaiBatch(): Promise<Row[]> {
  const sim = await startSimProc(['--dims', '768']);
  const gateway = await startGatewayProc(['--backend', sim.url]);
  try {
    const lines = Array.from({ length: LINES }, (_, i) =>
      JSON.stringify({ custom_id: `req-${i}`, method: 'POST', url: '/v1/embeddings', body: { model: MODEL, input: [`openai batch ${i} a`, `openai batch ${i} b`] } }),
    );
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', new Blob([`${lines.join('\n')}\n`]), 'batch.jsonl');
    const file = (await (await fetch(`${gateway.url}/v1/files`, { method: 'POST', body: form })).json()) as { id: string };
    const started = performance.now();
    const created = (await (await fetch(`${gateway.url}/v1/batches`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/embeddings', completion_window: '24h' }),
    })).json()) as { id: string };
    let batch: { status: string; output_file_id: string | null; request_counts: { completed: number } };
    for (;;) {
      batch = (await (await fetch(`${gateway.url}/v1/batches/${created.id}`)).json()) as typeof batch;
      if (['completed', 'failed', 'expired', 'cancelled'].includes(batch.status)) break;
      if (performance.now() - started > DEADLINE_MS) throw new Error(`batch ${created.id} still ${batch.status} after ${DEADLINE_MS / 1000} s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const seconds = (performance.now() - started) / 1000;
    if (batch.status !== 'completed' || !batch.output_file_id) throw new Error(`batch ${created.id} ended ${batch.status}`);
    const downloadStarted = performance.now();
    const response = await fetch(`${gateway.url}/v1/files/${batch.output_file_id}/content`);
    let bytes = 0;
    let partial = '';
    let good = 0;
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      const text = partial + decoder.decode(chunk, { stream: true });
      const parts = text.split('\n');
      partial = parts.pop()!;
      for (const line of parts) {
        const out = JSON.parse(line) as { response: { status_code: number; body: { data: unknown[] } } };
        if (out.response.status_code === 200 && out.response.body.data.length === 2) good++;
      }
    }
    const downloadSeconds = (performance.now() - downloadStarted) / 1000;
    const peak = gateway.peakRssMb();
    return [
      ['lines completed', `${fmt(good)} / ${fmt(LINES)}`, `${fmt(LINES * 2)} inputs x 768 dims, one zero-cost node; every output line a 200 with 2 embeddings: ${verdict(good === LINES)}`],
      ['create -> completed (s)', fmt(seconds, 1), `${fmt((LINES * 2) / seconds)} inputs/s`],
      ['output download', `${fmt(bytes / 1e6)} MB`, `${fmt(bytes / 1e6 / downloadSeconds)} MB/s, one client`],
      ['gateway peak RSS (MB)', fmt(peak), `whole run; target < 300 MB ${verdict(peak < 300)}`],
    ];
  } finally {
    await gateway.stop();
    await sim.stop();
  }
}
