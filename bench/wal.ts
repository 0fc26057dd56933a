/**
 * wal: 50,000 768-dim vectors written by the embedded store with the content cache on (each
 * vector stored once, in the vectors table, referred to by its document and its cache entry), 64 per transaction as the scheduler writes
 * them, the WAL file's size sampled after every chunk. Users saw the WAL reach 1.3-2.1 GB here;
 * it must stay near its limit (DEFAULT_WAL_LIMIT_BYTES). Target: peak WAL under 128 MB.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqliteStore.js';
import { fmt, type Row } from './lib.js';

const DOCS = 50_000;
const DIMS = 768;
const CHUNK = 64;
const TARGET_MB = 128;

export async function benchWal(): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-wal-bench-'));
  const store = openSqliteStore(dir, { cache: { maxBytes: 1024 * 1024 * 1024 } });
  const wal = (): number => {
    try {
      return fs.statSync(path.join(dir, 'sollol.db-wal')).size;
    } catch {
      return 0;
    }
  };
  try {
    const admitted = await store.admit(
      { id: '00000000-0000-4000-8000-000000000001', owner: 'bench', model: 'm', status: 'running', createdAt: Date.now(), metadata: {}, options: { truncate: true }, documents: Array.from({ length: DOCS }, (_, i) => `document ${i}`) },
      { maxJobs: 10, now: Date.now() },
    );
    if (!admitted.admitted) throw new Error('not admitted');
    const vector = new Float32Array(DIMS).map((_, i) => Math.sin(i));
    let peak = 0;
    const started = performance.now();
    for (let start = 0; start < DOCS; start += CHUNK) {
      const done = Array.from({ length: Math.min(CHUNK, DOCS - start) }, (_, i) => ({ index: start + i, vector, truncated: false }));
      await store.recordChunk(admitted.job.id, { done, failed: [] });
      peak = Math.max(peak, wal());
      // Let other work in between chunks, as the scheduler's awaits do.
      await new Promise((resolve) => setImmediate(resolve));
    }
    const perSecond = DOCS / ((performance.now() - started) / 1000);
    const peakMb = peak / 1e6;
    return [
      ['peak WAL (MB)', fmt(peakMb, 1), `${fmt(DOCS)} x ${DIMS}, cache on; target < ${TARGET_MB} MB ${peakMb < TARGET_MB ? 'MET' : 'MISSED'}`],
      ['vectors written per second', fmt(perSecond), 'each stored once (document and cache entry refer to it)'],
    ];
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
