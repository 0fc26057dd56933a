/**
 * `npm run bench [scenario ...]`: prints each scenario's figures and ratios measured in the
 * same run. No scenario name runs the default set (every scenario but the long, opt-in ones:
 * moonshot, openai-batch); scenarios: overhead, results, cache, store, wal, distributed, load, embed-file, embedded, generate, cpu, tail, flatcost, parse, submit; name them to choose, e.g. `npm run bench -- overhead cpu`.
 */
import { benchOverhead } from './overhead.js';
import { benchEmbedded } from './embedded.js';
import { benchCache } from './cache.js';
import { benchStore } from './store.js';
import { benchResults } from './results.js';
import { benchDistributed } from './distributed.js';
import { benchLoad } from './load.js';
import { benchWal } from './wal.js';
import { benchEmbedFile } from './embedFile.js';
import { benchCpu } from './cpu.js';
import { benchTail } from './tail.js';
import { benchFlatCost } from './flatcost.js';
import { benchMoonshot } from './moonshot.js';
import { benchOpenaiBatch } from './openaiBatch.js';
import { benchGenerate } from './generate.js';
import { benchParse } from './parse.js';
import { benchSubmit } from './submit.js';
import { printTable, type Row } from './lib.js';

const SCENARIOS: Record<string, { title: string; run: () => Promise<Row[]>; optIn?: boolean }> = {
  overhead: { title: 'overhead: 10,000 x 768 through the gateway vs straight to a zero-cost simulated node', run: benchOverhead },
  cache: { title: 'cache: the same 10,000 documents submitted twice', run: benchCache },
  results: { title: 'results: downloading 10,000 x 768 as JSON, NDJSON and base64, one client and four', run: benchResults },
  store: { title: 'store: embedded store writes alone, with status latency from another process', run: benchStore },
  distributed: { title: 'distributed: 10,000 x 768 through --redis mode vs the embedded store, serial nodes, Redis memory per job', run: benchDistributed },
  load: { title: 'load: 50 concurrent clients, 200 jobs of 1,000 documents, polling with backoff, 2 simulated nodes (zero-cost, then 2 ms/doc)', run: benchLoad },
  'embed-file': { title: 'embed-file: 200,000 lines through `sollol embed` to 4 serial simulated nodes (1 ms/doc): docs/s vs summed capacity, CLI peak RSS', run: benchEmbedFile },
  cpu: { title: 'cpu: gateway CPU (user + sys) per document, 3 x 10,000 x 768, zero-cost node', run: benchCpu },
  tail: { title: 'tail: one job against the summed capacity of serial nodes (4 x 1 ms/doc; 1 + 10 ms/doc)', run: benchTail },
  flatcost: { title: 'flatcost: a 10,000-doc job on a fresh gateway, after 200 and after 1,000 stored jobs (content cache full)', run: benchFlatCost },
  moonshot: { title: 'moonshot: 1,000,000 short docs, 384 dims, 4 serial nodes at 0.2 ms/doc, through `sollol embed` and through a bench client (opt-in)', run: benchMoonshot, optIn: true },
  'openai-batch': { title: 'openai-batch: an OpenAI embeddings batch of 25,000 lines x 2 inputs x 768 dims, create -> completed -> output downloaded (opt-in)', run: benchOpenaiBatch, optIn: true },
  generate: { title: 'generate: 2,000 prompts as one batch job to 4 simulated nodes with 2 generation slots each (100 ms per generation), sync embed beside it', run: benchGenerate },
  embedded: { title: 'embedded: the in-process model through the gateway vs called directly (2,000 texts), and responsiveness', run: benchEmbedded },
  parse: { title: 'parse: reading one 64 x 768 node answer, JSON.parse (the old parser worker) vs the byte reader, same run', run: benchParse },
  submit: { title: 'submit: the round trip and gateway CPU of one 4,000- and one 10,000-document submit, before any node works', run: benchSubmit },
  wal: { title: 'wal: 50,000 x 768 written by the embedded store with the cache on, peak write-ahead log size', run: benchWal },
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((name) => !SCENARIOS[name]);
if (unknown.length > 0) {
  console.error(`unknown scenario ${unknown.join(', ')}; choose from ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
console.log(`sollol benchmarks on ${process.version}, ${(await import('node:os')).cpus().length} cores`);
for (const name of wanted.length > 0 ? wanted : Object.keys(SCENARIOS).filter((n) => !SCENARIOS[n]!.optIn)) {
  const scenario = SCENARIOS[name]!;
  printTable(scenario.title, await scenario.run());
}
