/**
 * Errors of the sync API, in the shape each client family reads (docs/ARCHITECTURE.md, "Batch API rules"):
 * Ollama-compatible routes answer `{"error": "<sentence>", "code"}`, OpenAI-compatible
 * routes `{"error": {"message", "type", "param", "code"}}`. Codes are the gateway's stable
 * codes (src/errors.ts); a client mistake is never a 5xx; an unknown model is a 404 here,
 * as Ollama and OpenAI answer it (the batch API's MODEL_NOT_FOUND stays a 400).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BackendError } from '../backends/errors.js';
import { API_ERRORS, ApiError, type ApiErrorCode } from '../errors.js';
import { sendError, toApiError } from './errorHandler.js';

/** Where the sync API's status differs from the batch API's for the same code. */
const SYNC_STATUS: Partial<Record<ApiErrorCode, number>> = { MODEL_NOT_FOUND: 404 };

export class CompatError extends Error {
  readonly code: ApiErrorCode;
  readonly statusCode: number;
  /** The request field at fault, for OpenAI's `param`. */
  readonly param: string | null;
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ApiErrorCode, message: string, options: { param?: string; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'CompatError';
    this.code = code;
    this.statusCode = SYNC_STATUS[code] ?? API_ERRORS[code];
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }
}

/** Ollama's own sentence, which its clients and users recognise. */
export function modelNotFound(model: string): CompatError {
  return new CompatError('MODEL_NOT_FOUND', `model ${JSON.stringify(model)} not found, try pulling it first`, { param: 'model' });
}

export function noBackend(): CompatError {
  return new CompatError('BACKEND_UNAVAILABLE', 'no backend is reachable; try again once a node is up', { headers: { 'retry-after': '1' } });
}

/** A backend failure as the sync API reports it. */
export function fromBackendError(error: BackendError, model: string | undefined): CompatError {
  switch (error.code) {
    case 'MODEL_NOT_FOUND':
      return model === undefined ? new CompatError('MODEL_NOT_FOUND', error.message, { param: 'model' }) : modelNotFound(model);
    case 'INPUT_REJECTED':
      return new CompatError('INPUT_REJECTED', error.message, { param: 'input' });
    case 'BACKEND_TIMEOUT':
      return new CompatError('BACKEND_TIMEOUT', error.message);
    case 'INVALID_VECTOR':
      return new CompatError('INVALID_VECTOR', error.message);
    case 'CANCELLED':
      return new CompatError('BACKEND_UNAVAILABLE', 'The request was cancelled before a backend answered (the client went away or the gateway is stopping)');
    case 'BACKEND_UNAVAILABLE':
    case 'GATEWAY_RESTARTED':
    case 'DEPENDENCY_FAILED':
      return new CompatError('BACKEND_UNAVAILABLE', error.message, { headers: { 'retry-after': '1' } });
  }
}

function requestedModel(request: FastifyRequest): string | undefined {
  const model = (request.body as { model?: unknown } | undefined)?.model;
  return typeof model === 'string' && model !== '' ? model : undefined;
}

/** Anything thrown while handling a sync route, as a CompatError; logs what is not the client's doing. */
export function toCompatError(error: unknown, request: FastifyRequest): CompatError {
  let result: CompatError;
  if (error instanceof CompatError) result = error;
  else if (error instanceof BackendError) result = fromBackendError(error, requestedModel(request));
  else {
    const api = error instanceof ApiError ? error : toApiError(error as FastifyError, request);
    result = new CompatError(api.code, api.message, { headers: { ...api.headers } });
  }
  if (result.code === 'INTERNAL_ERROR') request.log.error({ err: error, url: request.url }, 'request failed');
  else if (result.statusCode >= 500) request.log.warn({ url: request.url, code: result.code, error: result.message }, 'sync request failed');
  return result;
}

export function sendOllamaError(reply: FastifyReply, error: CompatError): void {
  void reply
    .code(error.statusCode)
    .headers(error.headers)
    .type('application/json; charset=utf-8')
    .send({ error: error.message, code: error.code });
}

export function sendOpenAIError(reply: FastifyReply, error: CompatError): void {
  const type = error.statusCode >= 500 ? 'server_error' : 'invalid_request_error';
  void reply
    .code(error.statusCode)
    .headers(error.headers)
    .type('application/json; charset=utf-8')
    .send({ error: { message: error.message, type, param: error.param, code: error.code } });
}

/**
 * Fastify answers some malformed paths before any route, hook or error handler runs: a path
 * that is not valid percent-encoding (`/api/batch/jobs/%ff`, FST_ERR_BAD_URL) and a path
 * parameter over `maxParamLength` (a job id of more than 100 characters,
 * FST_ERR_MAX_PARAM_LENGTH), with a body of its own shape (and status 414 for the latter) and
 * without the version headers. Given as Fastify's `frameworkErrors` option, this answers them
 * as the route family does: a malformed job id or model id is the 404 an unknown one gets
 * (JOB_NOT_FOUND, MODEL_NOT_FOUND), any other bad path a 400 BAD_REQUEST. `headers` are the
 * ones every answer carries (the onRequest hooks do not run for these).
 */
export function frameworkErrorHandler(headers: Readonly<Record<string, string>>) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    void reply.headers(headers);
    const path = request.url.split('?')[0] ?? '';
    const clip = (text: string, max: number): string => (text.length > max ? `${text.slice(0, max)}...` : text);
    const known = error.code === 'FST_ERR_BAD_URL' || error.code === 'FST_ERR_MAX_PARAM_LENGTH';
    const job = /^\/api\/batch\/(?:jobs|results)\/([^/]*)/.exec(path);
    const model = /^\/v1\/models\/(.*)$/.exec(path);
    if (known && job) return sendError(reply, new ApiError('JOB_NOT_FOUND', `Job ${clip(job[1] ?? '', 60)} not found`));
    if (known && model) {
      return sendOpenAIError(reply, new CompatError('MODEL_NOT_FOUND', `The model '${clip(model[1] ?? '', 60)}' does not exist or no healthy backend serves it`, { param: 'model' }));
    }
    const why = error.code === 'FST_ERR_BAD_URL' ? 'is not valid percent-encoding' : 'has a segment longer than the gateway accepts';
    const api = known ? new ApiError('BAD_REQUEST', `The path ${clip(path, 120)} ${why}`) : toApiError(error, request);
    if (api.statusCode >= 500) request.log.error({ err: error, url: clip(path, 120) }, 'request failed');
    if (path === '/v1' || path.startsWith('/v1/')) sendOpenAIError(reply, new CompatError(api.code, api.message, { headers: { ...api.headers } }));
    else sendError(reply, api);
  };
}
