/**
 * `npm run bench [scenario ...]`: prints each scenario's figures and ratios measured in the
 * same run. Scenarios: overhead, results, cache, store, distributed, load, generate, embedded. No scenario name runs them all.
 */
import { benchOverhead } from './overhead.js';
import { benchEmbedded } from './embedded.js';
import { benchCache } from './cache.js';
import { benchStore } from './store.js';
import { benchResults } from './results.js';
import { benchDistributed } from './distributed.js';
import { benchLoad } from './load.js';
import { benchWal } from './wal.js';
import { benchGenerate } from './generate.js';
import { printTable, type Row } from './lib.js';

const SCENARIOS: Record<string, { title: string; run: () => Promise<Row[]> }> = {
  overhead: { title: 'overhead: 10,000 x 768 through the gateway vs straight to a zero-cost simulated node', run: benchOverhead },
  cache: { title: 'cache: the same 10,000 documents submitted twice', run: benchCache },
  results: { title: 'results: downloading 10,000 x 1024 as JSON, NDJSON and base64, one client and four', run: benchResults },
  store: { title: 'store: embedded store writes alone, with status latency from another process', run: benchStore },
  distributed: { title: 'distributed: 10,000 x 768 through --redis mode vs the embedded store, serial nodes, Redis memory per job', run: benchDistributed },
  load: { title: 'load: 50 concurrent clients, 200 jobs of 1,000 documents, polling with backoff, 2 simulated nodes (zero-cost, then 2 ms/doc)', run: benchLoad },
  generate: { title: 'generate: 2,000 prompts as one batch job to 4 simulated nodes with 2 generation slots each (100 ms per generation), sync embed beside it', run: benchGenerate },
  embedded: { title: 'embedded: the in-process model through the gateway vs called directly (2,000 texts), and responsiveness', run: benchEmbedded },
  wal: { title: 'wal: 50,000 x 768 written by the embedded store with the cache on, peak write-ahead log size', run: benchWal },
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !SCENARIOS[name]);
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; choose from ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
console.log(`sollol benchmarks on ${process.version}, ${(await import('node:os')).cpus().length} cores`);
for (const name of wanted.length > 0 ? wanted : Object.keys(SCENARIOS)) {
  const scenario = SCENARIOS[name]!;
  printTable(scenario.title, await scenario.run());
}
