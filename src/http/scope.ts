/** Who is asking: the scope the auth hook (auth.ts) resolved from the request's API key. */
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';
import type { Scope } from '../jobs/model.js';
import type {} from './auth.js';

export function scopeOf(request: FastifyRequest): Scope {
  const caller = request.sollolCaller;
  // Fail closed: a route reached without the auth hook having run must not act as anyone.
  if (caller === null) throw new ApiError('UNAUTHORIZED', "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'");
  return caller.scope;
}
