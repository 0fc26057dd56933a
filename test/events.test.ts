/**
 * Live progress: SSE per job (sequence, ids, Last-Event-ID reconnect), SSE of every job of a
 * key, the WebSocket (subscribe to ids or to all), both scoped by API key; results follow mode.
 * Real gateway, real simulated node made slow enough that a job runs for a while.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import WebSocket from 'ws';
import { SollolClient } from '../src/client/index.js';
import type { JobEvent } from '../src/client/index.js';
import { simVector } from '../src/sim/index.js';
import { MODEL, call, docs, startSim, startTestGateway, submit, waitFor, waitForStatus } from './helpers.js';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-0123456789abcdef';

async function slowJob(t: import('node:test').TestContext, count = 24, flags: Record<string, unknown> = {}, key?: string) {
  const node = await startSim(t, { delayPerDocMs: 25, serial: true });
  const gw = await startTestGateway(t, { backend: [node.url], chunkSize: '2', cache: false, ...flags } as never);
  const headers: Record<string, string> = key ? { authorization: `Bearer ${key}` } : {};
  const documents = docs(count, 'live');
  const { body } = await call(`${gw.url}/api/batch/embed`, { body: { model: MODEL, documents }, headers });
  assert.ok(body.job_id, JSON.stringify(body));
  return { node, gw, jobId: body.job_id as string, documents };
}

function assertWellFormed(events: JobEvent[], total: number): void {
  assert.equal(events[0]!.event, 'status');
  for (let i = 1; i < events.length; i++) assert.ok(events[i]!.id > events[i - 1]!.id, `event ids increase: ${events.map((e) => e.id).join(',')}`);
  const last = events.at(-1)!;
  assert.equal(last.event, 'end');
  assert.equal(last.data.status, 'completed');
  assert.equal(last.data.completed_items, total);
  const ends = events.filter((e) => e.event === 'end');
  assert.equal(ends.length, 1);
  const statuses = events.filter((e) => e.event === 'status').map((e) => e.data.status);
  assert.equal(statuses.at(-1), 'completed');
}

test('SSE: status at once, progress while it runs (monotonic ids, growing counts), the final status, then end', async (t) => {
  const { gw, jobId } = await slowJob(t, 40);
  const client = new SollolClient({ baseUrl: gw.url });
  const events: JobEvent[] = [];
  for await (const event of client.events(jobId)) events.push(event);
  assertWellFormed(events, 40);
  const progress = events.filter((e) => e.event === 'progress');
  assert.ok(progress.length >= 1, `progress events: ${progress.length}`);
  const counts = progress.map((e) => Number(e.data.completed_items));
  assert.deepEqual(counts, [...counts].sort((a, b) => a - b));
  assert.ok(counts[0]! < 40, 'progress came while the job ran');
});

test('SSE: a reconnect with Last-Event-ID gets only newer events and still ends', async (t) => {
  const { gw, jobId } = await slowJob(t);
  const client = new SollolClient({ baseUrl: gw.url });
  const abort = new AbortController();
  const first: JobEvent[] = [];
  await assert.rejects(async () => {
    for await (const event of client.events(jobId, { signal: abort.signal })) {
      first.push(event);
      if (event.event === 'progress') abort.abort();
    }
  });
  const lastId = first.at(-1)!.id;
  const second: JobEvent[] = [];
  for await (const event of client.events(jobId, { lastEventId: lastId })) second.push(event);
  assert.ok(second.length > 0);
  assert.ok(second.every((e) => e.id > lastId), 'nothing at or before Last-Event-ID is sent again');
  assert.equal(second.at(-1)!.event, 'end');
  // And a reconnect after the end gets an empty stream that closes.
  const after: JobEvent[] = [];
  const raw = await fetch(`${gw.url}/api/batch/jobs/${jobId}/events`, { headers: { 'last-event-id': String(second.at(-1)!.id) } });
  assert.equal(raw.status, 200);
  assert.match(raw.headers.get('content-type') ?? '', /text\/event-stream/);
  assert.doesNotMatch(await raw.text(), /event:/);
  assert.equal(after.length, 0);
});

test('SSE and WebSocket are scoped by API key: no key 401, a foreign job 404', async (t) => {
  const { gw, jobId } = await slowJob(t, 6, { apiKey: [KEY_A, KEY_B] }, KEY_A);
  assert.equal((await call(`${gw.url}/api/batch/jobs/${jobId}/events`)).status, 401);
  const foreign = await call(`${gw.url}/api/batch/jobs/${jobId}/events`, { headers: { authorization: `Bearer ${KEY_B}` } });
  assert.equal(foreign.status, 404);
  assert.equal(foreign.body.code, 'JOB_NOT_FOUND');
  const own = new SollolClient({ baseUrl: gw.url, apiKey: KEY_A });
  const events: JobEvent[] = [];
  for await (const event of own.events(jobId)) events.push(event);
  assert.equal(events.at(-1)!.event, 'end');

  const refused = new WebSocket(`${gw.url.replace('http', 'ws')}/api/batch/ws`);
  const status = await new Promise<number>((resolve, reject) => {
    refused.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    refused.on('open', () => reject(new Error('opened without a key')));
    refused.on('error', () => undefined);
  });
  assert.equal(status, 401);
  const b = await openWs(`${gw.url}/api/batch/ws`, KEY_B);
  b.send({ type: 'subscribe', job_ids: [jobId] });
  const error = await b.next((m) => m.type === 'error');
  assert.equal(error.code, 'JOB_NOT_FOUND');
  b.close();
});

interface WsClient {
  send(value: unknown): void;
  next(match: (m: any) => boolean): Promise<any>;
  messages: any[];
  close(): void;
}

async function openWs(httpUrl: string, key?: string): Promise<WsClient> {
  const socket = new WebSocket(httpUrl.replace(/^http/, 'ws'), key ? { headers: { authorization: `Bearer ${key}` } } : {});
  const messages: any[] = [];
  socket.on('message', (data) => messages.push(JSON.parse(String(data))));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  let read = 0;
  return {
    messages,
    send: (value) => socket.send(JSON.stringify(value)),
    next: (match) => waitFor(() => {
      while (read < messages.length) {
        const m = messages[read++];
        if (match(m)) return m;
      }
      return undefined;
    }, 'a websocket message'),
    close: () => socket.close(),
  };
}

test('WebSocket: subscribe to a job id gets the same sequence as SSE; all: true hears about jobs submitted later', async (t) => {
  const { gw, jobId } = await slowJob(t, 12);
  const ws = await openWs(`${gw.url}/api/batch/ws`);
  ws.send({ type: 'subscribe', job_ids: [jobId] });
  await ws.next((m) => m.type === 'subscribed');
  const end = await ws.next((m) => m.type === 'event' && m.event === 'end' && m.job_id === jobId);
  assert.equal(end.data.completed_items, 12);
  const events = ws.messages.filter((m) => m.type === 'event' && m.job_id === jobId).map((m) => ({ event: m.event, id: m.id, job_id: m.job_id, data: m.data }));
  assertWellFormed(events, 12);

  ws.send({ type: 'subscribe', all: true });
  await ws.next((m) => m.type === 'subscribed' && m.all === true);
  const later = (await submit(gw.url, { model: MODEL, documents: docs(4, 'later') })).body.job_id as string;
  const laterEnd = await ws.next((m) => m.type === 'event' && m.event === 'end' && m.job_id === later);
  assert.equal(laterEnd.data.completed_items, 4);
  ws.send({ type: 'subscribe' });
  const bad = await ws.next((m) => m.type === 'error');
  assert.equal(bad.code, 'INVALID_MESSAGE');
  ws.close();
});

test('WebSocket: a reconnect with last_event_ids resumes after the last event seen', async (t) => {
  const { gw, jobId } = await slowJob(t, 16);
  const first = await openWs(`${gw.url}/api/batch/ws`);
  first.send({ type: 'subscribe', job_ids: [jobId] });
  const progress = await first.next((m) => m.type === 'event' && m.event === 'progress');
  first.close();
  const second = await openWs(`${gw.url}/api/batch/ws`);
  second.send({ type: 'subscribe', job_ids: [jobId], last_event_ids: { [jobId]: progress.id } });
  await second.next((m) => m.type === 'event' && m.event === 'end').catch((e) => { console.log(JSON.stringify(second.messages)); throw e; });
  const ids = second.messages.filter((m) => m.type === 'event').map((m) => m.id as number);
  assert.ok(ids.every((id) => id > progress.id), `only newer events: ${ids.join(',')} after ${progress.id}`);
  second.close();
});

test('SSE of every job of a key: a status for each job, then their progress and end', async (t) => {
  const { gw, jobId } = await slowJob(t, 8);
  const abort = new AbortController();
  const response = await fetch(`${gw.url}/api/batch/events`, { signal: abort.signal });
  assert.equal(response.status, 200);
  let text = '';
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  await waitFor(async () => {
    const { value } = await reader.read();
    text += value ?? '';
    return text.includes('event: end') && text.includes(jobId) ? true : undefined;
  }, 'the end event on the all-jobs stream');
  abort.abort();
  assert.match(text, /event: status/);
  assert.ok(text.indexOf('event: status') < text.indexOf('event: end'));
});

test('results follow mode: NDJSON items in index order as they finish, ending when the job ends', async (t) => {
  const { gw, jobId, documents } = await slowJob(t, 20);
  const client = new SollolClient({ baseUrl: gw.url });
  let summary: any;
  const indexes: number[] = [];
  let sawRunning = false;
  for await (const item of client.results(jobId, { follow: true, onSummary: (s) => (summary = s) })) {
    assert.ok(item.embedding, 'every item embedded');
    assert.deepEqual(Array.from(item.embedding!), Array.from(simVector(MODEL, documents[item.index]!, 768)));
    indexes.push(item.index);
    if (indexes.length === 1) sawRunning = (await client.status(jobId)).status === 'running';
  }
  assert.equal(summary.partial, true, 'the stream started while the job ran');
  assert.ok(sawRunning, 'the first item came before the job ended');
  assert.deepEqual(indexes, documents.map((_, i) => i));
  assert.equal((await waitForStatus(gw.url, jobId, ['completed'])).status, 'completed');
  const refused = await call(`${gw.url}/api/batch/results/${jobId}?follow=true`);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.code, 'INVALID_QUERY');
});
