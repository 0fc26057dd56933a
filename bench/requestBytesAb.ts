/**
 * A/B of the Ollama adapter's embed call between builds, in one process: each build's
 * OllamaBackend calls one zero-cost simulated node (768 dims, its own process), in blocks of
 * 10 calls of 64 documents, the builds alternated block by block; this process's CPU (user +
 * system, all threads) per call, means and medians over the blocks. The answer's reading
 * (embedJson.ts) is in both.
 *
 * `node --import tsx bench/requestBytesAb.ts DIST_A DIST_B [BLOCKS]`; builds as in bench/storeAb.ts.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EmbeddingBackend } from '../src/backends/types.js';
import { startSimProc, texts } from './lib.js';

const [distA, distB, blocksArg] = process.argv.slice(2);
if (!distA || !distB) {
  console.error('usage: node --import tsx bench/requestBytesAb.ts DIST_A DIST_B [BLOCKS]');
  process.exit(2);
}
const BLOCKS = Number(blocksArg ?? 300);
const CALLS = 10;
const sim = await startSimProc(['--dims', '768']);
try {
  const backends: EmbeddingBackend[] = [];
  for (const dist of [distA, distB]) {
    const module = (await import(pathToFileURL(path.resolve(dist, 'backends/ollama.js')).href)) as typeof import('../src/backends/ollama.js');
    backends.push(new module.OllamaBackend({ url: sim.url, timeoutMs: 60_000 }));
  }
  const inputs = texts(64, 'request bytes ab');
  const call = (backend: EmbeddingBackend): Promise<unknown> => backend.embed({ model: 'nomic-embed-text', inputs, options: { truncate: true } });
  for (let i = 0; i < 50; i++) for (const b of backends) await call(b);
  const cpu = (): number => {
    const usage = process.cpuUsage();
    return usage.user + usage.system;
  };
  const perCall: number[][] = [[], []];
  for (let block = 0; block < BLOCKS; block++) {
    for (const which of block % 2 ? [1, 0] : [0, 1]) {
      const started = cpu();
      for (let i = 0; i < CALLS; i++) await call(backends[which]!);
      perCall[which]!.push((cpu() - started) / CALLS);
    }
  }
  const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
  const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1]!;
  [distA, distB].forEach((dist, i) => console.log(`${dist}: mean ${mean(perCall[i]!).toFixed(0)} us per call of 64 x 768, median ${median(perCall[i]!).toFixed(0)}`));
  for (const b of backends) await b.close();
} finally {
  await sim.stop();
}
