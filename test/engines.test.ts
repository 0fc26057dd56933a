/**
 * `npm install` on Node 20 prints no EBADENGINE warning: no locked package may require a
 * newer Node than the project's engines (content-disposition 3 and cookie 2 did, under
 * @fastify/swagger-ui and light-my-request; package.json's overrides pin majors that do not).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

/** The lowest Node major a simple `engines.node` range admits (">=22", ">= 18.12", "^20.17 || >=22"). */
function lowestMajor(range: string): number {
  const majors = range.split('||').map((part) => Number(/(\d+)/.exec(part)?.[1] ?? 0));
  return Math.min(...majors);
}

test('every locked package admits Node 20 (no EBADENGINE on npm install)', () => {
  const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean }> };
  const tooNew = Object.entries(lock.packages)
    .filter(([name, pkg]) => name !== '' && !Array.isArray(pkg.engines) && typeof pkg.engines?.node === 'string' && lowestMajor(pkg.engines.node) > 20)
    .map(([name, pkg]) => `${name} (${(pkg.engines as { node: string }).node})`);
  assert.deepEqual(tooNew, []);
  const manifest = JSON.parse(fs.readFileSync('package.json', 'utf8'));
  assert.equal(manifest.overrides['content-disposition'], '^2.0.1');
  assert.equal(manifest.overrides.cookie, '^1.1.1');
});

test('the overridden packages still serve: /docs (@fastify/static, content-disposition) and inject (light-my-request, cookie)', async (t) => {
  const { startTestGateway } = await import('./helpers.js');
  const { gateway } = await startTestGateway(t, { dataDir: ':memory:' });
  const docs = await gateway.app.inject({ method: 'GET', url: '/docs/' });
  assert.equal(docs.statusCode, 200);
  assert.match(docs.body, /swagger/i);
  const asset = await gateway.app.inject({ method: 'GET', url: '/docs/static/swagger-ui.css' });
  assert.equal(asset.statusCode, 200);
  const withCookie = await gateway.app.inject({ method: 'GET', url: '/api/health', cookies: { a: 'b' } });
  assert.equal(withCookie.json().status, 'ok');
});
