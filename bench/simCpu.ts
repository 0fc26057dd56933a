/**
 * The simulated node's own CPU per document: one `sollol sim` process (the built dist/), fed
 * `/api/embed` calls of 64 unique texts straight from this process over keep-alive
 * connections, no gateway in between; prints the node's user + system CPU (from /proc) per
 * document for each round. Texts are new every round, so every document is a cache miss.
 *
 * `node --import tsx bench/simCpu.ts`; env: DOCS (per round, 50,000), ROUNDS (3), LANES (calls
 * at once, 1), DELAY (--delay-per-doc, 0), CACHE_MB (--cache-mb, the node's default), PAUSE_MS
 * (the client's wait after each answer, 0), THREADS (1: print the node's CPU per thread).
 */
import fs from 'node:fs';
import http from 'node:http';
import { cpuSeconds, startSimProc } from './lib.js';

const DOCS = Number(process.env['DOCS'] ?? 50_000);
const ROUNDS = Number(process.env['ROUNDS'] ?? 3);
const LANES = Number(process.env['LANES'] ?? 1);
const BATCH = 64;
const PAUSE_MS = Number(process.env['PAUSE_MS'] ?? 0);
const cacheMb = process.env['CACHE_MB'];

const agent = new http.Agent({ keepAlive: true, maxSockets: LANES });
const sim = await startSimProc(['--serial', '--delay-per-doc', process.env['DELAY'] ?? '0', ...(cacheMb ? ['--cache-mb', cacheMb] : [])]);
const url = new URL(`${sim.url}/api/embed`);

function post(body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Voluntary context switches of `pid` so far (each a wait for a request or a timer). */
function contextSwitches(pid: number): number {
  return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

try {
  await post(JSON.stringify({ model: 'all-minilm', input: ['warm'] }));
  for (let round = 0; round < ROUNDS; round++) {
    const cpu0 = cpuSeconds(sim.pid);
    const switches0 = contextSwitches(sim.pid);
    let next = 0;
    await Promise.all(
      Array.from({ length: LANES }, async () => {
        while (next < DOCS) {
          const first = next;
          next += BATCH;
          const input = Array.from({ length: Math.min(BATCH, DOCS - first) }, (_, k) => `sim cpu ${round}.${first + k} short text`);
          await post(JSON.stringify({ model: 'all-minilm', input }));
          if (PAUSE_MS > 0) await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
        }
      }),
    );
    const us = ((cpuSeconds(sim.pid) - cpu0) / DOCS) * 1e6;
    if (process.env['THREADS']) {
      for (const tid of fs.readdirSync(`/proc/${sim.pid}/task`)) {
        const st = fs.readFileSync(`/proc/${sim.pid}/task/${tid}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        console.log(`  thread ${tid} ${st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'))}: utime ${f[11]} stime ${f[12]}`);
      }
    }
    console.log(`round ${round}: sim ${us.toFixed(1)} us/doc (${DOCS} docs at 384 dims, calls of ${BATCH}; ${contextSwitches(sim.pid) - switches0} context switches)`);
  }
} finally {
  agent.destroy();
  await sim.stop();
}
