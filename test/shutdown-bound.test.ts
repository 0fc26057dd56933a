/**
 * Issue 10 item 7: shutdown ends within a bound whatever clients and nodes do. `sollol up` as a
 * subprocess in front of a simulated node that never answers (hang): a sync /api/embed call
 * and an /api/chat stream are left hanging, SIGTERM is sent, and after the grace period
 * (--shutdown-grace 1) the calls are aborted, the connections closed and the process exits 0.
 * Before, the stop waited for the hung calls (up to --backend-timeout, 120 s).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { MODEL, startSim, tempDir, waitFor } from './helpers.js';
import { spawnGateway } from './subprocess.js';

/** Exits later than this fail the test: a bound for a loaded machine, far below the 120 s backend timeout. */
const BOUND_MS = 20_000;

test('SIGTERM with a hung sync call and a hung /api/chat stream: aborted after the grace, connections closed, exit 0', async (t) => {
  const node = await startSim(t, { hang: true });
  const gateway = await spawnGateway(t, ['--backend', node.url, '--data-dir', tempDir(t), '--shutdown-grace', '1', '--log-level', 'info']);
  const embed = fetch(`${gateway.url}/api/embed`, { method: 'POST', body: JSON.stringify({ model: MODEL, input: ['hangs'] }) }).then(
    async (response) => ({ status: response.status, text: await response.text() }),
    (error: unknown) => ({ error: String(error) }),
  );
  const chat = fetch(`${gateway.url}/api/chat`, { method: 'POST', body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true }) }).then(
    async (response) => ({ status: response.status, text: await response.text() }),
    (error: unknown) => ({ error: String(error) }),
  );
  await waitFor(() => (node.stats().hung >= 2 ? true : undefined), 'both calls parked on the hung node');

  const exited = once(gateway.child, 'exit') as Promise<[number | null, string | null]>;
  gateway.child.kill('SIGTERM');
  let bound: NodeJS.Timeout | undefined;
  const [code, signal] = await Promise.race([
    exited,
    new Promise<never>((_, reject) => {
      bound = setTimeout(() => reject(new Error(`still running ${BOUND_MS} ms after SIGTERM:\n${gateway.log()}`)), BOUND_MS);
    }),
  ]);
  clearTimeout(bound);
  assert.deepEqual({ code, signal }, { code: 0, signal: null }, gateway.log());
  // Both clients got an answer or a closed connection, not a hang.
  const answers = await Promise.all([embed, chat]);
  for (const answer of answers) assert.ok('error' in answer || answer.status >= 500, JSON.stringify(answer));
  await waitFor(() => (node.stats().hung === 0 ? true : undefined), 'the node to see both calls dropped');
});
