/**
 * Live progress (docs/ARCHITECTURE.md, "Live events"):
 *   GET /api/batch/jobs/{id}/events   Server-Sent Events for one job (`Last-Event-ID` honoured)
 *   GET /api/batch/events             Server-Sent Events for every job of the caller
 *   GET /api/batch/ws                 a WebSocket: subscribe to job ids or to all of one's jobs
 * Every route is scoped by API key like the rest of the Batch API (the auth hook runs on the
 * upgrade request too). Open streams are ended when the gateway closes.
 */
import type {} from '@fastify/swagger';
import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { ApiError } from '../../errors.js';
import type { JobManager } from '../../jobs/manager.js';
import { HEARTBEAT_INTERVAL_MS, POLL_INTERVAL_MS, SharedPoller, type JobEvent } from '../events/feed.js';
import { JobSubscriptions } from '../events/subscriptions.js';
import { scopeOf } from '../scope.js';
import { errorSchema, jobIdParams } from '../schemas.js';

export interface EventRouteOptions {
  readonly manager: JobManager;
  readonly enabled: boolean;
  /** Poll interval of the shared store, ms (tests may shorten it). */
  readonly pollIntervalMs?: number;
  readonly heartbeatIntervalMs?: number;
}

const tags = ['batch'];
const MAX_WS_SUBSCRIPTIONS = 1000;

export async function eventRoutes(app: FastifyInstance, options: EventRouteOptions): Promise<void> {
  if (!options.enabled) {
    app.addHook('onRequest', async () => {
      throw new ApiError('BATCH_DISABLED', 'Batch processing disabled. Start gateway with --batch-processing');
    });
  }
  const poller = new SharedPoller(app.log, options.pollIntervalMs ?? POLL_INTERVAL_MS);
  const subscriptions = new JobSubscriptions(options.manager, poller);
  const heartbeatMs = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
  /** Closers of every open stream and socket, run before the server closes. */
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const close of [...open]) close();
    poller.close();
  });

  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });
  // An upgrade refused before the plugin's own hooks ran (401 from the auth hook, 429) leaves
  // its socket open, which would hold the gateway's shutdown: close it once answered.
  app.addHook('onResponse', async (request, reply) => {
    if (String(request.headers.upgrade ?? '').toLowerCase() === 'websocket' && reply.statusCode !== 101) request.raw.socket?.destroy();
  });

  app.get<{ Params: { job_id: string }; Querystring: { last_event_id?: number } }>('/api/batch/jobs/:job_id/events', {
    schema: {
      tags,
      summary: 'Server-Sent Events of one job: status, progress (at most every 250 ms), end; Last-Event-ID honoured',
      params: jobIdParams,
      querystring: { type: 'object', properties: { last_event_id: { type: 'integer', minimum: -1, description: 'Resume after this event id (the Last-Event-ID header wins)' } } },
      response: { 404: errorSchema },
    },
  }, async (request, reply) => {
    const lastEventId = lastEventIdOf(request);
    const stream = openSse(request, reply, heartbeatMs, open);
    const stop = await subscriptions.followJob(scopeOf(request), request.params.job_id, lastEventId, (event) => stream.send(event, true), () => stream.end())
      .catch((error: unknown) => {
        stream.abandon();
        throw error;
      });
    stream.onClose(stop);
    stream.start();
    return reply;
  });

  app.get('/api/batch/events', {
    schema: { tags, summary: "Server-Sent Events of every job of the caller's key (the newest 100): status, progress, end" },
  }, async (request, reply) => {
    const stream = openSse(request, reply, heartbeatMs, open);
    const scope = scopeOf(request);
    stream.start();
    stream.onClose(subscriptions.followAll(scope, new Map(), (event) => stream.send(event, false)));
    return reply;
  });

  app.get('/api/batch/ws', { websocket: true, schema: { tags, summary: 'WebSocket: {"type":"subscribe","job_ids":[...]} or {"type":"subscribe","all":true}; events as {"type":"event",...}' } }, (socket: WebSocket, request: FastifyRequest) => {
    const scope = scopeOf(request);
    const stops = new Map<string, () => void>();
    const sendJson = (value: unknown): void => {
      if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(value));
    };
    const sendEvent = (event: JobEvent): void => sendJson({ type: 'event', event: event.event, id: event.id, job_id: event.jobId, data: event.data });
    const close = (): void => {
      for (const stop of stops.values()) stop();
      stops.clear();
      clearInterval(ping);
      open.delete(closeSocket);
    };
    const closeSocket = (): void => {
      close();
      socket.close(1001, 'gateway shutting down');
    };
    open.add(closeSocket);
    const ping = setInterval(() => socket.ping(), heartbeatMs);
    ping.unref();
    socket.on('close', close);
    socket.on('error', (error) => request.log.debug({ err: error }, 'websocket error'));
    socket.on('message', (raw) => {
      void handleMessage(String(raw)).catch((error: unknown) => {
        request.log.warn({ err: error }, 'websocket message failed');
        sendJson({ type: 'error', code: 'INTERNAL', detail: 'The message could not be handled' });
      });
    });

    async function handleMessage(text: string): Promise<void> {
      const message = parseMessage(text);
      if (typeof message === 'string') return sendJson({ type: 'error', code: 'INVALID_MESSAGE', detail: message });
      if (message.type === 'unsubscribe') {
        for (const id of message.job_ids ?? [...stops.keys()]) {
          stops.get(id)?.();
          stops.delete(id);
        }
        return sendJson({ type: 'unsubscribed', job_ids: message.job_ids ?? null });
      }
      if (message.all === true) {
        if (!stops.has('*')) stops.set('*', subscriptions.followAll(scope, new Map(Object.entries(message.last_event_ids ?? {})), sendEvent));
        return sendJson({ type: 'subscribed', all: true });
      }
      const ids = message.job_ids ?? [];
      if (stops.size + ids.length > MAX_WS_SUBSCRIPTIONS) {
        return sendJson({ type: 'error', code: 'INVALID_MESSAGE', detail: `At most ${MAX_WS_SUBSCRIPTIONS} subscriptions per connection` });
      }
      const subscribed: string[] = [];
      for (const id of ids) {
        if (stops.has(id)) continue;
        try {
          const stop = await subscriptions.followJob(scope, id, message.last_event_ids?.[id], sendEvent, () => stops.delete(id));
          // followJob may have ended already (a finished job): keep only live subscriptions.
          stops.set(id, stop);
          subscribed.push(id);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          sendJson({ type: 'error', code: error.code, detail: error.message, job_id: id });
        }
      }
      sendJson({ type: 'subscribed', job_ids: subscribed });
    }
  });
}

interface WsMessage {
  type: 'subscribe' | 'unsubscribe';
  job_ids?: string[];
  all?: boolean;
  last_event_ids?: Record<string, number>;
}

function parseMessage(text: string): WsMessage | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return 'Messages are JSON: {"type":"subscribe","job_ids":["<id>"]} or {"type":"subscribe","all":true}';
  }
  if (typeof value !== 'object' || value === null) return 'A message is a JSON object';
  const m = value as Record<string, unknown>;
  if (m.type !== 'subscribe' && m.type !== 'unsubscribe') return "Field 'type' must be subscribe or unsubscribe";
  if (m.job_ids !== undefined && !(Array.isArray(m.job_ids) && m.job_ids.every((id) => typeof id === 'string'))) return "Field 'job_ids' must be a list of job ids";
  if (m.type === 'subscribe' && m.all !== true && m.job_ids === undefined) return "A subscribe names 'job_ids' or sets 'all': true";
  if (m.last_event_ids !== undefined) {
    const ids = m.last_event_ids;
    if (typeof ids !== 'object' || ids === null || Object.values(ids).some((n) => !Number.isInteger(n))) return "Field 'last_event_ids' maps job ids to integers";
  }
  return m as unknown as WsMessage;
}

function lastEventIdOf(request: FastifyRequest<{ Querystring: { last_event_id?: number } }>): number | undefined {
  const header = request.headers['last-event-id'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && /^-?\d+$/.test(value.trim())) return Number(value.trim());
  return request.query.last_event_id;
}

interface SseStream {
  send(event: JobEvent, withId: boolean): void;
  /** Writes the headers and what was queued: call once the subscription is known to be allowed. */
  start(): void;
  end(): void;
  /** Drops the stream before it started (the route throws an error answer instead). */
  abandon(): void;
  onClose(stop: () => void): void;
}

/**
 * An SSE response on the raw socket. Events sent (and an end) before `start` are queued:
 * the first snapshot arrives while the subscription is being set up.
 */
function openSse(request: FastifyRequest, reply: FastifyReply, heartbeatMs: number, open: Set<() => void>): SseStream {
  let queued = '';
  let started = false;
  let endWanted = false;
  let closed = false;
  const closers: (() => void)[] = [];
  let heartbeat: NodeJS.Timeout | undefined;
  const raw = reply.raw;
  const finish = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    open.delete(finish);
    for (const close of closers) close();
    if (started && !raw.writableEnded) raw.end();
  };
  open.add(finish);
  request.raw.on('close', finish);
  return {
    send(event, withId) {
      if (closed) return;
      const text = `${withId ? `id: ${event.id}\n` : ''}event: ${event.event}\ndata: ${JSON.stringify({ ...event.data, event_id: event.id })}\n\n`;
      if (started) raw.write(text);
      else queued += text;
    },
    start() {
      if (started || closed) return;
      started = true;
      reply.hijack();
      const headers: Record<string, string | number | string[]> = {};
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = value as string | number | string[];
      raw.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      raw.write(`retry: 1000\n\n${queued}`);
      queued = '';
      if (endWanted) return finish();
      heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), heartbeatMs);
      heartbeat.unref();
    },
    end() {
      if (started) finish();
      else endWanted = true;
    },
    abandon() {
      closed = true;
      open.delete(finish);
    },
    onClose(stop) {
      if (closed) stop();
      else closers.push(stop);
    },
  };
}
