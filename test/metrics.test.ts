/** GET /metrics: Prometheus text with job, chunk, queue and per-node metrics that move with the work. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MODEL, docs, startSim, startTestGateway, submit, waitForStatus } from './helpers.js';

const EXPECTED = [
  'sollol_jobs_submitted_total',
  'sollol_jobs_completed_total',
  'sollol_jobs_failed_total',
  'sollol_jobs_cancelled_total',
  'sollol_jobs_active',
  'sollol_jobs_pending',
  'sollol_scheduler_queued_jobs',
  'sollol_scheduler_chunks_in_flight',
  'sollol_scheduler_workers',
  'sollol_chunks_completed_total',
  'sollol_chunks_retried_total',
  'sollol_chunks_failed_total',
  'sollol_documents_embedded_total',
  'sollol_documents_failed_total',
  'sollol_chunk_duration_seconds',
  'sollol_backend_request_duration_seconds',
  'sollol_backend_documents_total',
  'sollol_backend_errors_total',
  'sollol_backend_circuit_opens_total',
  'sollol_backend_healthy',
  'sollol_backend_circuit_state',
  'sollol_backend_in_flight',
  'sollol_backend_max_in_flight',
  'sollol_backend_latency_seconds',
  'process_resident_memory_bytes',
];

async function scrape(url: string): Promise<{ contentType: string; text: string }> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  return { contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

/** The value of one sample line, e.g. `sollol_jobs_completed_total` or `sollol_backend_healthy{backend="..."}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('/metrics exposes the expected metrics, and they move after a job', async (t) => {
  const node = await startSim(t);
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '10' });
  const before = await scrape(url);
  assert.match(before.contentType, /^text\/plain; version=0\.0\.4/);
  for (const name of EXPECTED) assert.match(before.text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  assert.equal(sample(before.text, 'sollol_jobs_submitted_total'), 0);
  assert.equal(sample(before.text, `sollol_backend_healthy{backend="${node.url}"}`), 1);
  assert.equal(sample(before.text, `sollol_backend_circuit_state{backend="${node.url}",state="closed"}`), 1);
  assert.equal(sample(before.text, `sollol_backend_max_in_flight{backend="${node.url}"}`), 2);

  const { body } = await submit(url, { model: MODEL, documents: docs(45, 'metrics') });
  await waitForStatus(url, body.job_id, ['completed']);
  const after = (await scrape(url)).text;
  assert.equal(sample(after, 'sollol_jobs_submitted_total'), 1);
  assert.equal(sample(after, 'sollol_jobs_completed_total'), 1);
  assert.equal(sample(after, 'sollol_jobs_active'), 0);
  assert.equal(sample(after, 'sollol_chunks_completed_total'), 5);
  assert.equal(sample(after, 'sollol_documents_embedded_total'), 45);
  assert.equal(sample(after, 'sollol_chunk_duration_seconds_count'), 5);
  assert.equal(sample(after, `sollol_backend_request_duration_seconds_count{backend="${node.url}",outcome="ok"}`), 5);
  assert.equal(sample(after, `sollol_backend_documents_total{backend="${node.url}"}`), 45);
  assert.equal(sample(after, `sollol_backend_in_flight{backend="${node.url}"}`), 0);
  assert.ok(sample(after, `sollol_backend_latency_seconds{backend="${node.url}"}`)! > 0);
});

test('failures show in chunk and per-node error metrics; each gateway has its own registry', async (t) => {
  // Every document is refused (too long, truncate off): each chunk of 5 is bisected down to its
  // documents (9 calls: 5, 2, 3, 1, 1, 1, 2, 1, 1), and each document fails INPUT_REJECTED.
  const node = await startSim(t, { maxInputChars: 10 });
  const { url } = await startTestGateway(t, { backend: [node.url], chunkSize: '5' }, { SOLLOL_CHUNK_RETRIES: '1' });
  const other = await startTestGateway(t, { backend: [node.url] });
  const { body } = await submit(url, { model: MODEL, documents: docs(10, 'failing'), options: { truncate: false } });
  await waitForStatus(url, body.job_id, ['failed']);
  const text = (await scrape(url)).text;
  assert.equal(sample(text, 'sollol_jobs_failed_total'), 1);
  assert.equal(sample(text, 'sollol_chunks_retried_total{code="INPUT_REJECTED"}'), undefined, 'a 4xx is bisected, not retried');
  assert.equal(sample(text, 'sollol_chunks_failed_total{code="INPUT_REJECTED"}'), 10);
  assert.equal(sample(text, 'sollol_documents_failed_total{code="INPUT_REJECTED"}'), 10);
  assert.equal(sample(text, `sollol_backend_errors_total{backend="${node.url}",code="INPUT_REJECTED"}`), 18);
  assert.equal(sample(text, `sollol_backend_request_duration_seconds_count{backend="${node.url}",outcome="INPUT_REJECTED"}`), 18);
  const untouched = (await scrape(other.url)).text;
  assert.equal(sample(untouched, 'sollol_jobs_failed_total'), 0);
  assert.equal(sample(untouched, `sollol_backend_errors_total{backend="${node.url}",code="INPUT_REJECTED"}`), undefined);
});
