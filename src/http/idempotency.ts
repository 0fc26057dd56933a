/**
 * Idempotency-Key on every POST that creates something (every POST under /api/batch/ and
 * /api/autobatch/, whatever the job type): the first successful (2xx) answer is kept in the
 * store for 24 hours per API key (owner) and key; the same key with the same request
 * (method, route, body) gets that very answer again, same job_id, marked
 * `Idempotent-Replayed: true`; the same key with another request is 409 IDEMPOTENCY_CONFLICT.
 * A refused or failed call keeps nothing, so it can be retried under the same key.
 * Concurrent calls with one key are answered one after the other: in this process by a lock,
 * across gateways on one store by a reservation kept before the call runs (a second call waits
 * for the first one's answer, up to IN_PROGRESS_WAIT_MS, then is told 409 IDEMPOTENCY_IN_PROGRESS).
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { ControlStore } from '../store/control.js';
import { scopeOf } from './scope.js';

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const HEADER = 'idempotency-key';
const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
/** A reservation outlives any call (a dead gateway's frees the key after this). */
const RESERVATION_MS = 120_000;
const IN_PROGRESS_WAIT_MS = 30_000;
const IN_PROGRESS_POLL_MS = 100;

declare module 'fastify' {
  interface FastifyRequest {
    sollolIdempotency: { owner: string; key: string; fingerprint: string; release: () => void; replayed: boolean; reserved: boolean } | null;
  }
}

/** Every POST of the Batch and autobatch APIs creates something (a job, a template, a queue entry). */
export function createsSomething(method: string, routeUrl: string | undefined): boolean {
  return method === 'POST' && routeUrl !== undefined && (routeUrl.startsWith('/api/batch/') || routeUrl.startsWith('/api/autobatch/'));
}

/** Objects with sorted keys, so that `{"a":1,"b":2}` and `{"b":2,"a":1}` are the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function fingerprint(method: string, path: string, body: unknown): string {
  return createHash('sha256').update(`${method} ${path}\n${canonicalJson(body ?? null)}`).digest('hex');
}

export function installIdempotency(app: FastifyInstance, store: ControlStore): void {
  const inFlight = new Map<string, Promise<void>>();
  app.decorateRequest('sollolIdempotency', null);

  app.addHook('preHandler', async (request, reply) => {
    const raw = request.headers[HEADER];
    if (raw === undefined || !createsSomething(request.method, request.routeOptions.url)) return;
    const key = Array.isArray(raw) ? raw[0]! : raw;
    if (!KEY_PATTERN.test(key)) {
      throw new ApiError('INVALID_IDEMPOTENCY_KEY', 'Header Idempotency-Key must be 1 to 255 printable ASCII characters without spaces');
    }
    const scope = scopeOf(request);
    const owner = scope.owner ?? 'admin';
    const slot = `${owner}\n${key}`;
    // One call per key at a time: a second one waits for the first's answer, then replays it.
    while (inFlight.has(slot)) await inFlight.get(slot);
    let release!: () => void;
    inFlight.set(slot, new Promise<void>((resolve) => (release = () => {
      inFlight.delete(slot);
      resolve();
    })));
    const print = fingerprint(request.method, pathOf(request), request.body);
    const state = { owner, key, fingerprint: print, release, replayed: false, reserved: false };
    request.sollolIdempotency = state;
    let kept;
    for (const deadline = Date.now() + IN_PROGRESS_WAIT_MS; ; ) {
      const now = Date.now();
      const answer = await store.reserveIdempotency(owner, key, print, now, now + RESERVATION_MS);
      if (answer === 'reserved') {
        state.reserved = true;
        return;
      }
      // Another gateway runs the same key's first call now: wait for its answer.
      if (answer.statusCode !== 0 || answer.fingerprint !== print) {
        kept = answer;
        break;
      }
      if (Date.now() > deadline) {
        throw new ApiError('IDEMPOTENCY_IN_PROGRESS', `A call with Idempotency-Key '${key}' is still running; retry later to get its answer`, { 'retry-after': '5' });
      }
      await new Promise((resolve) => setTimeout(resolve, IN_PROGRESS_POLL_MS));
    }
    if (kept.fingerprint !== print) {
      throw new ApiError(
        'IDEMPOTENCY_CONFLICT',
        `Idempotency-Key '${key}' was already used within the last 24 hours for a different request; use a new key for a new request`,
      );
    }
    request.sollolIdempotency.replayed = true;
    return reply.code(kept.statusCode).header('content-type', 'application/json; charset=utf-8').header('idempotent-replayed', 'true').send(kept.body);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const state = request.sollolIdempotency;
    if (!state || state.replayed || !state.reserved) return payload;
    if (reply.statusCode < 200 || reply.statusCode >= 300 || typeof payload !== 'string') {
      state.reserved = false;
      await store.releaseIdempotency(state.owner, state.key, state.fingerprint);
      return payload;
    }
    state.reserved = false;
    const now = Date.now();
    const kept = await store.keepIdempotentAnswer(
      state.owner,
      state.key,
      { fingerprint: state.fingerprint, statusCode: reply.statusCode, body: payload, expiresAt: now + IDEMPOTENCY_TTL_MS },
      now,
    );
    // Another gateway on the same store answered this key first: answer what it answered.
    return kept.body;
  });

  const done = async (request: FastifyRequest): Promise<void> => {
    const state = request.sollolIdempotency;
    if (!state) return;
    // An answer that never reached onSend (the client went away): the key is free again.
    if (state.reserved) await store.releaseIdempotency(state.owner, state.key, state.fingerprint).catch(() => undefined);
    state.release();
  };
  app.addHook('onResponse', done);
  app.addHook('onRequestAbort', done);
}

function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0] ?? request.url;
}
