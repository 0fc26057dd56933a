/**
 * Issue 10 item 7: a request that trickles is cut. Ten loopback sockets send a POST whose body
 * (or whose headers) arrives 4 bytes at a time; with --request-timeout 1 s (and the headers
 * timeout 0.5 s) the gateway answers 408 and closes every one of them, where before all ten
 * stayed open for as long as the client kept trickling. Bounded: 10 sockets, loopback, 20 s.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { MODEL, call, startSim, startTestGateway } from './helpers.js';

const SOCKETS = 10;
/** The client gives up trickling (and the test fails) after this long: a bound, not a measurement. */
const BOUND_MS = 20_000;

interface Trickle {
  readonly closed: Promise<{ answer: string; openMs: number }>;
  stop(): void;
}

/** Sends `head` at once, then `rest` 4 bytes every 100 ms until the server closes the socket. */
function trickle(port: number, head: string, rest: string): Trickle {
  const socket = net.connect(port, '127.0.0.1');
  const started = performance.now();
  let answer = '';
  let offset = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (chunk) => (answer += chunk.toString()));
  socket.on('error', () => {});
  socket.once('connect', () => {
    socket.write(head);
    timer = setInterval(() => {
      if (offset >= rest.length || socket.destroyed) return clearInterval(timer);
      socket.write(rest.slice(offset, offset + 4));
      offset += 4;
    }, 100);
  });
  const closed = new Promise<{ answer: string; openMs: number }>((resolve) => {
    socket.once('close', () => {
      clearInterval(timer);
      resolve({ answer, openMs: performance.now() - started });
    });
  });
  return { closed, stop: () => socket.destroy() };
}

async function allClosed(trickles: Trickle[]): Promise<{ answer: string; openMs: number }[]> {
  let bound: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    bound = setTimeout(() => reject(new Error(`sockets still open after ${BOUND_MS} ms of trickling`)), BOUND_MS);
  });
  try {
    return await Promise.race([Promise.all(trickles.map((t) => t.closed)), timeout]);
  } finally {
    clearTimeout(bound);
    for (const t of trickles) t.stop();
  }
}

test('bodies and headers that trickle are cut with 408 after --request-timeout; a normal request still succeeds', async (t) => {
  const node = await startSim(t);
  const { url, gateway } = await startTestGateway(t, { backend: [node.url], requestTimeout: '1' }, { SOLLOL_HEADERS_TIMEOUT: '0.5' });
  const port = Number(new URL(url).port);
  const body = JSON.stringify({ model: MODEL, documents: Array.from({ length: 50 }, (_, i) => `document ${i}`) });

  const slowBodies = Array.from({ length: SOCKETS }, () =>
    trickle(port, `POST /api/batch/embed HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`, body),
  );
  const slowHeaders = Array.from({ length: SOCKETS }, () => trickle(port, 'POST /api/batch/embed HTTP/1.1\r\n', `Host: 127.0.0.1\r\nX-Padding: ${'p'.repeat(400)}\r\n\r\n`));
  for (const [what, trickles] of [['body', slowBodies], ['headers', slowHeaders]] as const) {
    const closed = await allClosed(trickles);
    for (const { answer } of closed) assert.match(answer, /^HTTP\/1\.1 408 /, `${what}: ${answer.slice(0, 200)}`);
    assert.match(closed[0]!.answer, /"code":"BAD_REQUEST"/);
  }
  assert.equal((await call(`${url}/api/batch/jobs`)).body.total, 0, 'no trickled job was admitted');
  assert.equal((await call(`${url}/api/batch/embed`, { rawBody: body })).status, 200);
  assert.equal(gateway.app.server.requestTimeout, 1000);
});
