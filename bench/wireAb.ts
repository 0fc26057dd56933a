/**
 * In-process A/Bs of what crosses to the store's writer thread and of a backend call's signal,
 * for a shared, noisy machine: two variants alternated in blocks of 20 operations (the order
 * swapped every block), this process's CPU (user + system, all threads: the writer's too) per
 * operation, means and medians over the blocks.
 *
 *   node --import tsx bench/wireAb.ts pending DIST_A DIST_B   pendingDocuments of a 64-document
 *       range through each build's threaded store (every call the same work: nothing recorded)
 *   node --import tsx bench/wireAb.ts handover DIST            recordChunk of 64 x 768 (a job that
 *       is not running: only the crossing) without and with ChunkOutcome.handOver
 *   node --import tsx bench/wireAb.ts signal DIST              AbortSignal.timeout + AbortSignal.any
 *       against callSignal, with an abort listener added and removed as undici does
 *
 * BLOCKS (default 300) sets the blocks per variant; builds as in bench/storeAb.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ThreadedJobStore } from '../src/store/sqlite/threadedStore.js';

type Op = () => Promise<void>;
const BLOCK = 20;
const BLOCKS = Number(process.env.BLOCKS ?? 300);

const [mode, ...dists] = process.argv.slice(2);
const load = async <T>(dist: string, module: string): Promise<T> => (await import(pathToFileURL(path.resolve(dist, module)).href)) as T;
const closers: (() => Promise<void>)[] = [];

async function openStore(dist: string): Promise<ThreadedJobStore> {
  const { openThreadedStore } = await load<typeof import('../src/store/sqlite/threadedStore.js')>(dist, 'store/sqlite/threadedStore.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-wire-ab-'));
  const { store } = await openThreadedStore({ dataDir: dir, cache: { maxBytes: 1024 * 1024 * 1024 } });
  closers.push(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

async function variants(): Promise<[string, Op][]> {
  if (mode === 'pending' && dists.length === 2) {
    return Promise.all(
      dists.map(async (dist): Promise<[string, Op]> => {
        const store = await openStore(dist);
        const documents = Array.from({ length: 6400 }, (_, i) => `wire ab document ${i}: a short passage about embeddings and batch processing`);
        await store.admit({ id: 'j', owner: 'anonymous', model: 'm', status: 'running', createdAt: 1, metadata: {}, options: { truncate: true }, documents }, { maxJobs: 10, now: 2 });
        let next = 0;
        return [dist, async () => {
          const from = (next++ % 100) * 64;
          if ((await store.pendingDocuments('j', from, from + 64)).length !== 64) throw new Error('expected 64 pending documents');
        }];
      }),
    );
  }
  if (mode === 'handover' && dists.length === 1) {
    const store = await openStore(dists[0]!);
    const op = (handOver: boolean): Op => async () => {
      const all = new Float32Array(64 * 768);
      for (let i = 0; i < all.length; i += 64) all[i] = i;
      const done = Array.from({ length: 64 }, (_, i) => ({ index: i, vector: all.subarray(i * 768, (i + 1) * 768), truncated: false }));
      await store.recordChunk('no-such-job', { done, failed: [], ...(handOver ? { handOver: true } : {}) });
    };
    return [['copy', op(false)], ['handOver', op(true)]];
  }
  if (mode === 'signal' && dists.length === 1) {
    const { callSignal } = await load<typeof import('../src/backends/callSignal.js')>(dists[0]!, 'backends/callSignal.js');
    const outer = new AbortController();
    const listener = (): void => {};
    return [
      ['AbortSignal.timeout + any', async () => {
        const signal = AbortSignal.any([outer.signal, AbortSignal.timeout(60_000)]);
        signal.addEventListener('abort', listener);
        await null;
        signal.removeEventListener('abort', listener);
      }],
      ['callSignal', async () => {
        const call = callSignal(60_000, outer.signal);
        call.signal.addEventListener('abort', listener);
        await null;
        call.signal.removeEventListener('abort', listener);
        call.done();
      }],
    ];
  }
  console.error('usage: bench/wireAb.ts pending DIST_A DIST_B | handover DIST | signal DIST');
  process.exit(2);
}

const ops = await variants();
const cpu = (): number => {
  const usage = process.cpuUsage();
  return usage.user + usage.system;
};
for (let i = 0; i < 200; i++) for (const [, op] of ops) await op();
const perOp = ops.map((): number[] => []);
for (let block = 0; block < BLOCKS; block++) {
  for (const which of block % 2 ? [1, 0] : [0, 1]) {
    const started = cpu();
    for (let i = 0; i < BLOCK; i++) await ops[which]![1]();
    perOp[which]!.push((cpu() - started) / BLOCK);
  }
}
const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
ops.forEach(([name], i) => console.log(`${name}: mean ${mean(perOp[i]!).toFixed(1)} us, median ${median(perOp[i]!).toFixed(1)} us per operation`));
for (const close of closers) await close();
