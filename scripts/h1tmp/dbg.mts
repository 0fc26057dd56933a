import { testRedis } from '/work/wt-h1/test/redisServer.ts';
import { resolveConfig } from '/work/wt-h1/src/config.ts';
import { startGateway } from '/work/wt-h1/src/gateway.ts';
import { startSimNode } from '/work/wt-h1/src/sim/index.ts';
import pino from 'pino';
import fs from 'node:fs';
const server = await testRedis();
if ('skip' in server) throw new Error('no redis');
const node = await startSimNode({ poison: 'POISONED', badVector: 'null' });
const dir = fs.mkdtempSync('/tmp/h1/dbg-');
const config = resolveConfig({ port: '0', redis: server.url, redisPrefix: `h1dbg-${Date.now()}:`, backend: [node.url], chunkSize: '64', dataDir: dir }, { SOLLOL_HEALTH_INTERVAL: '0.2' });
const gw = await startGateway(config, pino({ level: 'warn' }) as any);
const docs = Array.from({ length: 64 }, (_, i) => (i === 5 || i === 40 ? `POISONED ${i}` : `document ${i}: the quick brown fox`));
const sub = await (await fetch(`${gw.url}/api/batch/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'nomic-embed-text', documents: docs }) })).json() as any;
for (let i = 0; i < 40; i++) {
  await new Promise((r) => setTimeout(r, 250));
  const s = await (await fetch(`${gw.url}/api/batch/jobs/${sub.job_id}`)).json() as any;
  if (i % 4 === 0 || s.status !== 'running') console.log(s.status, JSON.stringify(s.progress), JSON.stringify(s.status_detail), node.stats().callSizes.join(','));
  if (s.status !== 'running') break;
}
await gw.stop(); await node.close(); await server.stop();
