/**
 * Per-key request rate limit (`--rate-limit N` requests per minute), by @fastify/rate-limit:
 * embedded, with its in-process store; in the distributed mode, counted in Redis (the
 * library's Redis store, keys `<prefix>ratelimit:<key>`), so N gateways together allow the
 * limit once, not N times. While Redis is unreachable requests are not limited (the routes
 * that need Redis answer 503 STORE_UNAVAILABLE themselves). A fixed one-minute window per key owner (keys sharing a name share
 * it; per client address when no keys are configured). Its hooks are route-level, so they run after the auth hook has named
 * the caller. Over the limit: 429 RATE_LIMITED with `Retry-After`, thrown so that each route
 * family's error handler answers in its own shape. Public routes are never limited (a load
 * balancer's health probe must not be refused).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { ApiError } from '../errors.js';
import { isPublicRoute } from './auth.js';

const WINDOW_MS = 60_000;

function keyOf(request: FastifyRequest, keysConfigured: boolean): string {
  const caller = request.sollolCaller;
  return keysConfigured && caller !== null ? `owner:${caller.owner}` : `ip:${request.ip}`;
}

/** Where the distributed mode counts: the deployment's Redis and key prefix. */
export interface SharedRateLimit {
  readonly redis: Redis;
  readonly prefix: string;
}

/** Registers the limiter; call before any route is registered. A limit of 0 registers nothing. */
export async function installRateLimit(app: FastifyInstance, perMinute: number, keysConfigured: boolean, shared?: SharedRateLimit): Promise<void> {
  if (perMinute <= 0) return;
  await app.register(rateLimit, {
    ...(shared ? { redis: shared.redis, nameSpace: `${shared.prefix}ratelimit:`, skipOnError: true } : {}),
    global: true,
    max: perMinute,
    timeWindow: WINDOW_MS,
    keyGenerator: (request) => keyOf(request, keysConfigured),
    allowList: (request) => isPublicRoute(request),
    errorResponseBuilder: (_request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      return new ApiError(
        'RATE_LIMITED',
        `Rate limit of ${context.max} requests per minute exceeded for this ${keysConfigured ? 'API key' : 'client'}; retry in ${seconds} s`,
        { 'retry-after': String(seconds) },
      );
    },
  });
}
