/** Who is asking. Until API keys exist every request acts as the anonymous owner. */
import type { FastifyRequest } from 'fastify';
import { ANONYMOUS_SCOPE, type Scope } from '../jobs/model.js';

export function scopeOf(_request: FastifyRequest): Scope {
  return ANONYMOUS_SCOPE;
}
