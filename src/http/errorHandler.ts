/**
 * Every error leaves as `{detail, code}` with the code's status. Unknown errors are
 * normalised here: a client mistake is never a 5xx and no stack trace leaves the server.
 */
import type { Socket } from 'node:net';
import type { ConnectionError, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import { ApiError } from '../errors.js';
import { isStoreError, type StoreError } from '../store/errors.js';
import { listQueryError, submitValidationError } from './validation.js';

type ValidationTranslator = (error: ErrorObject, body: unknown) => ApiError;

/** Routes name their translator in `config.validationErrors`; others get a generic 400. */
export interface RouteErrorConfig {
  validationErrors?: 'submit' | 'list';
}

declare module 'fastify' {
  interface FastifyContextConfig {
    validationErrors?: 'submit' | 'list';
  }
}

const TRANSLATORS: Record<NonNullable<RouteErrorConfig['validationErrors']>, ValidationTranslator> = {
  submit: submitValidationError,
  list: (error) => listQueryError(error),
};

/** Seconds a client is told to wait before trying again while the store is unavailable. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/** A store fault as the API answers it: 507 STORE_FULL, or 503 STORE_UNAVAILABLE with Retry-After. */
export function fromStoreError(error: StoreError): ApiError {
  if (error.code === 'STORE_FULL') return new ApiError('STORE_FULL', error.message);
  return new ApiError('STORE_UNAVAILABLE', `${error.message}; try again shortly`, { 'retry-after': String(STORE_RETRY_AFTER_SECONDS) });
}

export function toApiError(error: FastifyError, request: FastifyRequest): ApiError {
  if (error instanceof ApiError) return error;
  if (isStoreError(error)) return fromStoreError(error);
  if (error.validation && error.validation.length > 0) {
    const which = (request.routeOptions.config as RouteErrorConfig).validationErrors;
    const first = error.validation[0] as ErrorObject;
    if (which) return TRANSLATORS[which](first, request.body);
    return new ApiError('BAD_REQUEST', `${error.validationContext ?? 'request'} ${first.instancePath} ${first.message ?? 'is invalid'}`.trim());
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError('BODY_TOO_LARGE', 'Request body is larger than the gateway accepts; send fewer or shorter documents per batch');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json');
    default:
      break;
  }
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500) {
    return new ApiError('BAD_REQUEST', error.message);
  }
  return new ApiError('INTERNAL_ERROR', `Internal error (request ${request.id}); the gateway log has the details`);
}

export function sendError(reply: FastifyReply, error: ApiError): void {
  void reply.code(error.statusCode).headers(error.headers).type('application/json; charset=utf-8').send({ detail: error.message, code: error.code });
}

/**
 * Requests the HTTP parser cannot read (a broken request line, a bad Content-Length or chunk
 * size, headers over 16 KiB) never reach a route; Fastify answers them itself with a body of its
 * own shape. Given as Fastify's `clientErrorHandler` option, this answers them as the gateway
 * routes do, `{detail, code}` with the version headers, then closes the connection.
 */
export function clientErrorHandler(headers: Readonly<Record<string, string>>) {
  return (error: ConnectionError, socket: Socket): void => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    let status = 400;
    let detail = 'The request is not valid HTTP/1.1';
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      detail = 'The request line and headers are larger than the gateway accepts';
    } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      detail = 'The request was not received in time';
    }
    if (socket.writable) {
      const body = JSON.stringify({ detail, code: 'BAD_REQUEST' });
      const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(
        `HTTP/1.1 ${status} ${status === 400 ? 'Bad Request' : status === 431 ? 'Request Header Fields Too Large' : 'Request Timeout'}\r\n` +
          `content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}
