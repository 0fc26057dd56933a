/**
 * store: 768-dim embeddings written per second by the embedded store alone (vectors and the
 * progress they cause, one transaction per 64-document chunk, as the scheduler writes them),
 * with the status route's p99 latency measured from another process while it writes.
 * Targets: 20,000 vectors/s or more; status p99 under 50 ms.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_SCOPE } from '../src/jobs/model.js';
import { statusView } from '../src/jobs/view.js';
import { openSqliteStore } from '../src/store/sqlite/sqliteStore.js';
import { fmt, percentile, type Row } from './lib.js';

const DOCS = 60_000;
const DIMS = 768;
const CHUNK = 64;

/** The child: a store, a status endpoint, and the writes. Prints one JSON line when done. */
async function child(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-store-bench-'));
  const store = openSqliteStore(dir, { cache: { maxBytes: 0 } });
  const admitted = await store.admit(
    { id: '00000000-0000-4000-8000-000000000001', owner: 'bench', model: 'm', status: 'running', createdAt: Date.now(), metadata: {}, options: { truncate: true }, documents: Array.from({ length: DOCS }, (_, i) => `document ${i}`) },
    { maxJobs: 10, now: Date.now() },
  );
  if (!admitted.admitted) throw new Error('not admitted');
  const server = http.createServer((request, response) => {
    void store.get(ADMIN_SCOPE, admitted.job.id).then((job) => {
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify(statusView(job!, Date.now())));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const vector = new Float32Array(DIMS).map((_, i) => Math.sin(i));
  const started = performance.now();
  for (let start = 0; start < DOCS; start += CHUNK) {
    const done = Array.from({ length: Math.min(CHUNK, DOCS - start) }, (_, i) => ({ index: start + i, vector, truncated: false }));
    await store.recordChunk(admitted.job.id, { done, failed: [] });
    // Let requests in between chunks, as the scheduler's awaits do.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ perSecond: DOCS / seconds, seconds })}\n`);
  server.close();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

export async function benchStore(): Promise<Row[]> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'bench/store.ts', 'child'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Record<string, number>[] = [];
  let buffer = '';
  let notify: () => void = () => {};
  proc.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let at: number;
    while ((at = buffer.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, at)) as Record<string, number>);
      buffer = buffer.slice(at + 1);
      notify();
    }
  });
  const next = async (): Promise<Record<string, number>> => {
    while (lines.length === 0) await new Promise<void>((resolve) => (notify = resolve));
    return lines.shift()!;
  };
  const { port } = await next();
  const polls: number[] = [];
  let finished: Record<string, number> | undefined;
  void next().then((line) => (finished = line));
  while (!finished) {
    const started = performance.now();
    await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
    polls.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const p99 = percentile(polls, 99);
  return [
    ['vectors written per second', fmt(finished.perSecond!), `${fmt(DOCS)} x ${DIMS}, ${CHUNK} per transaction; target >= 20,000 ${finished.perSecond! >= 20_000 ? 'MET' : 'MISSED'}`],
    ['status p50 while writing (ms)', fmt(percentile(polls, 50), 1), `${polls.length} polls from another process`],
    ['status p99 while writing (ms)', fmt(p99, 1), `target < 50 ms ${p99 < 50 ? 'MET' : 'MISSED'}`],
  ];
}

if (process.argv[2] === 'child') await child();
