/**
 * Every error leaves as `{detail, code}` with the code's status. Unknown errors are
 * normalised here: a client mistake is never a 5xx and no stack trace leaves the server.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorObject } from 'ajv';
import { ApiError } from '../errors.js';
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

export function toApiError(error: FastifyError, request: FastifyRequest): ApiError {
  if (error instanceof ApiError) return error;
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
