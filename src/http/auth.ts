/**
 * API keys at the edge. When keys are configured, every request but the public routes must
 * carry `Authorization: Bearer <key>` or `X-API-Key: <key>`; the hook resolves it to a caller
 * (owner id, admin or not) before any route code runs, and throws UNAUTHORIZED otherwise.
 * The error is thrown, not sent, so each route family's error handler answers in its own
 * shape (`{detail, code}`, Ollama's `{error, code}`, OpenAI's `{error: {...}}`).
 * Without keys every request acts as the anonymous owner. Keys are never logged or echoed.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiKey } from '../auth/keys.js';
import { KeyRing } from '../auth/keyRing.js';
import { ApiError } from '../errors.js';
import { ANONYMOUS_OWNER, ANONYMOUS_SCOPE, type Scope } from '../jobs/model.js';

/** Who is asking, once the key is checked. */
export interface Caller {
  /** Owner id of the jobs this caller makes. */
  readonly owner: string;
  readonly admin: boolean;
  readonly scope: Scope;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook on every non-public route; null before it (and on public routes). */
    sollolCaller: Caller | null;
  }
}

/** Open without a key: liveness, the version (how a gateway recognises itself), the API description, and the dashboard's static files (its API calls carry the key). */
const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['/api/health', '/api/version', '/openapi.json', '/api/ready', '/readyz']);
/** Only an admin key may read these (global figures across every owner). */
const ADMIN_ROUTES: ReadonlySet<string> = new Set(['/metrics']);

export const ANONYMOUS_CALLER: Caller = Object.freeze({ owner: ANONYMOUS_OWNER, admin: false, scope: ANONYMOUS_SCOPE });

const CHALLENGE = 'Bearer realm="sollol"';

export function isPublicRoute(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  if (route === undefined) return false;
  return PUBLIC_ROUTES.has(route) || route === '/docs' || route.startsWith('/docs/') || route === '/dashboard' || route.startsWith('/dashboard/');
}

export function callerOf(key: ApiKey): Caller {
  const scope: Scope = key.admin ? { kind: 'admin', owner: key.owner } : { kind: 'owner', owner: key.owner };
  return Object.freeze({ owner: key.owner, admin: key.admin, scope });
}

/** The key a request presents: the Bearer token, else X-API-Key; undefined when neither is there. */
export function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (typeof authorization === 'string') {
    const bearer = /^\s*Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (bearer) return bearer[1];
  }
  const header = request.headers['x-api-key'];
  const value = Array.isArray(header) ? header[0] : header;
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

export function installAuth(app: FastifyInstance, keys: readonly ApiKey[]): void {
  app.decorateRequest('sollolCaller', null);
  if (keys.length === 0) {
    app.addHook('onRequest', async (request) => {
      request.sollolCaller = ANONYMOUS_CALLER;
    });
    return;
  }
  const ring = new KeyRing(keys);
  const callers = new Map(keys.map((key) => [key, callerOf(key)]));
  app.addHook('onRequest', async (request) => {
    if (isPublicRoute(request)) return;
    const presented = presentedKey(request);
    if (presented === undefined) {
      throw new ApiError('UNAUTHORIZED', "An API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'", { 'www-authenticate': CHALLENGE });
    }
    const key = ring.match(presented);
    if (key === undefined) {
      // The path only: a query string could hold anything a client put there.
      request.log.info({ path: request.url.split('?')[0], ip: request.ip }, 'request refused: invalid API key');
      throw new ApiError('UNAUTHORIZED', 'The API key is not valid', { 'www-authenticate': `${CHALLENGE}, error="invalid_token"` });
    }
    const caller = callers.get(key)!;
    if (!caller.admin && request.routeOptions.url !== undefined && ADMIN_ROUTES.has(request.routeOptions.url)) {
      throw new ApiError('FORBIDDEN', `${request.routeOptions.url} shows figures across every key; it needs an admin key`);
    }
    request.sollolCaller = caller;
  });
}
