/**
 * A/B of the embedded store's per-chunk writes between builds, on a shared, noisy machine:
 * each build's SqliteJobStore (no writer thread) is opened side by side in this process, and
 * every chunk is run on each of them in turn (the order swapped every chunk), so both see the
 * same machine at the same moment. Per build: the wall time of `pendingDocuments` and of
 * `recordChunk` (synchronous inside), medians and low quantiles over all chunks. JOBS jobs of
 * 10,000 x 768 (default 3), chunks of 64, content cache on (1 GiB).
 *
 * Builds are dist/ directories with a package.json one level up, e.g. for the commit before:
 * `git stash; npm run build; mkdir -p /tmp/old && cp -r dist package.json /tmp/old/; git stash pop; npm run build`
 * then `node --import tsx bench/storeAb.ts /tmp/old/dist dist`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ChunkOutcome } from '../src/jobs/model.js';
import type { SqliteJobStore } from '../src/store/sqlite/sqliteStore.js';

const DIMS = 768;
const CHUNK = 64;
const DOCS = 10_000;
const JOBS = Number(process.env.JOBS ?? 3);

interface Build {
  readonly dist: string;
  readonly dir: string;
  readonly store: SqliteJobStore;
  readonly pending: number[];
  readonly record: number[];
}

const dists = process.argv.slice(2);
if (dists.length === 0) {
  console.error('usage: node --import tsx bench/storeAb.ts DIST [DIST ...]');
  process.exit(2);
}
const builds: Build[] = [];
for (const dist of dists) {
  const module = (await import(pathToFileURL(path.resolve(dist, 'store/sqlite/sqliteStore.js')).href)) as typeof import('../src/store/sqlite/sqliteStore.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-store-ab-'));
  builds.push({ dist, dir, store: module.openSqliteStore(dir, { cache: { maxBytes: 1024 * 1024 * 1024 } }), pending: [], record: [] });
}

let clock = Date.now();
for (let j = 0; j < JOBS; j++) {
  const id = `job${j}`;
  const documents = Array.from({ length: DOCS }, (_, i) => `${id} document ${i}: a short passage about embeddings and batch processing`);
  for (const b of builds) {
    await b.store.admit({ id, owner: 'anonymous', model: 'm', status: 'running', createdAt: clock++, metadata: {}, options: { truncate: true }, documents }, { maxJobs: 1000, now: clock++ });
  }
  for (let from = 0; from < DOCS; from += CHUNK) {
    for (const b of (from / CHUNK) % 2 ? [...builds].reverse() : builds) {
      let started = performance.now();
      const docs = await b.store.pendingDocuments(id, from, Math.min(DOCS, from + CHUNK));
      b.pending.push(performance.now() - started);
      // One buffer for the chunk, as the node's answer is read (embedJson.ts).
      const all = new Float32Array(docs.length * DIMS);
      for (let i = 0; i < all.length; i += 97) all[i] = (i % 977) / 977;
      const outcome: ChunkOutcome = { done: docs.map((d, i) => ({ index: d.index, vector: all.subarray(i * DIMS, (i + 1) * DIMS), truncated: false })), failed: [] };
      started = performance.now();
      await b.store.recordChunk(id, outcome);
      b.record.push(performance.now() - started);
    }
  }
}

const quantile = (values: number[], q: number): string => ([...values].sort((a, b) => a - b)[Math.floor(values.length * q)]! * 1000).toFixed(0);
for (const b of builds) {
  console.log(
    `${b.dist}: pendingDocuments median ${quantile(b.pending, 0.5)} us (p25 ${quantile(b.pending, 0.25)}); ` +
      `recordChunk median ${quantile(b.record, 0.5)} us (p25 ${quantile(b.record, 0.25)}, p10 ${quantile(b.record, 0.1)}) per chunk of ${CHUNK}`,
  );
  await b.store.close();
  fs.rmSync(b.dir, { recursive: true, force: true });
}
