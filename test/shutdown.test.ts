/**
 * Graceful shutdown (issue 7, part 4), with `sollol up` as a child process in front of a slow
 * simulated node: on SIGTERM (or SIGINT) the gateway stops accepting connections, lets the
 * chunks in flight finish (or aborts them after the scheduler's 5 s grace), and exits 0; started
 * again on the same data directory it resumes the job and completes it, every document embedded
 * exactly once (counted on the node: a finished chunk is recorded before the exit, never sent
 * again). A second signal while stopping does not cut the stop short.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { Agent, request } from 'undici';
import type { SimNode } from '../src/sim/index.js';
import { MODEL, call, docs, startSim, submit, tempDir, waitFor, waitForStatus } from './helpers.js';
import { spawnGateway, type GatewayProcess } from './subprocess.js';
import { ADMIN_SCOPE } from '../src/jobs/model.js';
import { openSqliteStore } from '../src/store/sqlite/sqliteStore.js';

const DOCS = 200;
const CHUNK = 25;

/** Exit code and signal of the child, and how long it took after `signal` was sent. */
async function signalAndWait(gateway: GatewayProcess, signal: NodeJS.Signals, beforeExit?: () => Promise<void>): Promise<{ code: number | null; signal: string | null; ms: number }> {
  const exited = once(gateway.child, 'exit') as Promise<[number | null, string | null]>;
  const sent = performance.now();
  gateway.child.kill(signal);
  await beforeExit?.();
  const [code, by] = await exited;
  return { code, signal: by, ms: performance.now() - sent };
}

/** Whether a fresh connection to the gateway is refused (or answered 503 while it closes). */
async function refusesNewConnections(url: string): Promise<boolean> {
  const agent = new Agent({ pipelining: 0, connections: 1 });
  try {
    const response = await request(`${url}/api/health`, { dispatcher: agent });
    await response.body.arrayBuffer();
    return response.statusCode === 503;
  } catch {
    return true;
  } finally {
    await agent.destroy();
  }
}

/** Starts the job, waits until at least one chunk finished and the next ones are in flight. */
async function jobInFlight(t: TestContext, node: SimNode, prefix: string): Promise<{ args: string[]; first: GatewayProcess; jobId: string }> {
  const args = ['--backend', node.url, '--data-dir', tempDir(t), '--chunk-size', String(CHUNK), '--no-cache', '--log-level', 'info'];
  const first = await spawnGateway(t, args);
  const submitted = await submit(first.url, { model: MODEL, documents: docs(DOCS, prefix), metadata: { run: prefix } });
  assert.equal(submitted.status, 200, JSON.stringify(submitted.body));
  const jobId = submitted.body.job_id as string;
  await waitFor(async () => {
    const status = (await call(`${first.url}/api/batch/jobs/${jobId}`)).body;
    return status.progress.completed_items >= CHUNK && node.stats().inFlight > 0 ? status : undefined;
  }, 'a finished chunk and more in flight');
  return { args, first, jobId };
}

/** Restarts on the same data directory and checks the job completes with every document once. */
async function resumeAndCheck(t: TestContext, node: SimNode, args: string[], jobId: string, sentBeforeStop: number): Promise<void> {
  // Read from the stopped gateway's own store file: once the second gateway runs, it records
  // chunks of its own at once (a busy machine may answer the first poll after two of them).
  const stopped = openSqliteStore(args[args.indexOf('--data-dir') + 1]!, { cache: { maxBytes: 0 } });
  const recorded = (await stopped.get(ADMIN_SCOPE, jobId))?.completedItems;
  await stopped.close();
  assert.equal(recorded, sentBeforeStop, 'everything the node answered before the stop was recorded');
  const second = await spawnGateway(t, args);
  const done = await waitForStatus(second.url, jobId, ['completed', 'failed', 'cancelled']);
  assert.equal(done.status, 'completed');
  assert.equal(done.progress.completed_items, DOCS);
  assert.equal(done.progress.failed_items, 0);
  assert.equal(node.stats().documents, DOCS, 'every document embedded exactly once across both runs');
  const results = (await call(`${second.url}/api/batch/results/${jobId}`)).body;
  assert.equal(results.results.length, DOCS);
  assert.ok(results.results.every((r: { embedding: unknown }) => Array.isArray(r.embedding)));
  assert.deepEqual(results.errors, []);
  assert.equal(await second.stop(), 0);
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} mid-job: stops accepting, lets the chunks in flight finish, exits 0; a restart completes the job, each document once`, async (t) => {
    const node = await startSim(t, { delayPerCallMs: 800 });
    const { args, first, jobId } = await jobInFlight(t, node, signal);
    let refused = false;
    const stopped = await signalAndWait(first, signal, async () => {
      // While the chunks in flight drain, new connections are turned away.
      refused = await waitFor(async () => ((await refusesNewConnections(first.url)) ? true : undefined), 'new connections refused', 3_000).catch(() => false);
    });
    assert.deepEqual({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null }, first.log());
    assert.ok(refused, 'a new connection was still served after the signal');
    // Well inside the 5 s grace (the chunks take 800 ms); the bound is loose for a busy machine.
    assert.ok(stopped.ms < 10_000, `stopping took ${Math.round(stopped.ms)} ms with chunks of 800 ms in flight`);
    assert.match(first.log(), new RegExp(`${signal} received`));
    assert.equal(node.stats().aborted, 0, 'no call in flight was cut off');
    assert.equal(node.stats().inFlight, 0);
    const sent = node.stats().documents;
    assert.ok(sent > CHUNK && sent < DOCS && sent % CHUNK === 0, `the node embedded ${sent} documents before the stop`);
    await resumeAndCheck(t, node, args, jobId, sent);
  });
}

test('a chunk still in flight after the 5 s grace is aborted; the gateway exits 0 and the restart re-sends only that chunk', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 400 });
  const { args, first, jobId } = await jobInFlight(t, node, 'grace');
  // From now on every new call hangs (the two in flight finish): the next chunks never finish on their own.
  node.configure({ hang: true });
  await waitFor(() => (node.stats().hung >= 2 ? true : undefined), 'both workers on a hung call');
  const sent = node.stats().documents;
  const stopped = await signalAndWait(first, 'SIGTERM');
  assert.deepEqual({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null }, first.log());
  assert.ok(stopped.ms >= 4_500 && stopped.ms < 15_000, `stopping took ${Math.round(stopped.ms)} ms (grace 5 s)`);
  await waitFor(() => (node.stats().hung === 0 ? true : undefined), 'the hung calls to be dropped');
  assert.equal(node.stats().documents, sent, 'no hung call was answered');
  node.configure({ hang: false });
  await resumeAndCheck(t, node, args, jobId, sent);
});

test('a second SIGTERM (and a SIGINT) while stopping does not cut the stop short', async (t) => {
  const node = await startSim(t, { delayPerCallMs: 1_500 });
  const { args, first, jobId } = await jobInFlight(t, node, 'twice');
  const stopped = await signalAndWait(first, 'SIGTERM', async () => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    first.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    if (first.child.exitCode === null && first.child.signalCode === null) first.child.kill('SIGINT');
  });
  assert.deepEqual({ code: stopped.code, signal: stopped.signal }, { code: 0, signal: null }, `killed by the second signal? log:\n${first.log()}`);
  assert.equal(node.stats().aborted, 0, 'no call in flight was cut off');
  await resumeAndCheck(t, node, args, jobId, node.stats().documents);
});
