/**
 * The dashboard end to end in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core; `.ci/run` installs the package when missing, and a missing browser fails
 * this test rather than skipping it): the API key is asked once, a submitted job appears,
 * its bar moves, cancel works, the nodes and cache show, and a screenshot is saved to
 * .artifacts/dashboard.png.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { MODEL, call, docs, startSim, startTestGateway, tempDir, waitFor } from './helpers.js';

const CHROMIUM = process.env.SOLLOL_CHROMIUM ?? '/usr/bin/chromium';
const KEY = 'dashboard-key-0123456789';
export const SCREENSHOT = path.resolve('.artifacts/dashboard.png');

test('dashboard: key asked once, a job appears with a moving bar, cancel works, screenshot saved', async (t) => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)`);
  const node = await startSim(t, { delayPerDocMs: 20, serial: true });
  const gw = await startTestGateway(t, { backend: [node.url], chunkSize: '4', apiKey: [KEY] });
  const profile = tempDir(t, 'sollol-chromium-');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  t.after(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${gw.url}/dashboard`);
  await page.locator('#key-form').waitFor({ state: 'visible' });
  await page.fill('#api-key', KEY);
  await page.click('#key-form button[type=submit]');
  await page.locator('#connection', { hasText: 'live' }).waitFor();
  assert.equal(await page.evaluate('sessionStorage.getItem("sollol-api-key")'), KEY, 'kept for the tab');
  assert.equal(await page.locator('#key-form').isVisible(), false, 'asked once: the form goes away');

  const headers = { authorization: `Bearer ${KEY}` };
  const done = (await call(`${gw.url}/api/batch/embed`, { body: { model: MODEL, documents: docs(8, 'finished') }, headers })).body.job_id as string;
  await page.locator(`#job-${done}[data-status=completed]`).waitFor();
  const job = (await call(`${gw.url}/api/batch/embed`, { body: { model: MODEL, documents: docs(400, 'dashboard') }, headers })).body.job_id as string;
  const row = page.locator(`#job-${job}`);
  await row.waitFor();
  const bar = row.locator('.bar');
  const first = await waitFor(async () => {
    const v = Number(await bar.getAttribute('aria-valuenow'));
    return v > 0 ? v : undefined;
  }, 'the bar to start');
  await waitFor(async () => (Number(await bar.getAttribute('aria-valuenow')) > first ? true : undefined), 'the bar to move');
  assert.equal(await row.getAttribute('data-status'), 'running');

  await row.locator('td.id').click();
  await page.locator('#detail').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#detail-id'), job);
  await row.locator('button.cancel').click();
  await page.locator(`#job-${job}[data-status=cancelled]`).waitFor();
  assert.equal((await call(`${gw.url}/api/batch/jobs/${job}`, { headers })).body.status, 'cancelled');
  await page.locator('#detail [data-field=status]', { hasText: 'cancelled' }).waitFor();
  await page.locator('#detail-retry').waitFor({ state: 'visible' });

  await page.locator('.node .health', { hasText: 'healthy' }).waitFor();
  // A reload in the same tab keeps the key: no second prompt.
  await page.reload();
  await page.locator('#connection', { hasText: 'live' }).waitFor();
  assert.equal(await page.locator('#key-form').isVisible(), false);
  await page.locator(`#job-${job}[data-status=cancelled]`).click();
  await page.locator('#detail [data-field=status]', { hasText: 'cancelled' }).waitFor();
  assert.match((await page.textContent('#nodes')) ?? '', new RegExp(node.url.replace(/[.]/g, '\\.')));
  assert.match((await page.textContent('#cache')) ?? '', /hit rate/);
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  assert.ok(fs.statSync(SCREENSHOT).size > 10_000, 'a real screenshot');
  assert.deepEqual(pageErrors, []);
});
