/**
 * Validators and the translation of schema failures into the Batch API's stable codes,
 * with a `detail` naming the offending field and index. Bodies are validated without type
 * coercion (a number is not a document); query strings with it (`?limit=5` is a string).
 */
import { Ajv, type ErrorObject } from 'ajv';
import type { FastifySchemaCompiler } from 'fastify';
import { ApiError, formatCount } from '../errors.js';

const bodyAjv = new Ajv({ coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: false, strict: false });
const queryAjv = new Ajv({ coerceTypes: true, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) => {
  const ajv = httpPart === 'body' ? bodyAjv : queryAjv;
  return ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
};

/** The first schema failure of a batch submit body as an ApiError. */
export function submitValidationError(error: ErrorObject, body: unknown): ApiError {
  const path = error.instancePath;
  if (path === '') return rootError(error);
  if (path === '/model') return new ApiError('INVALID_MODEL', "Field 'model' must be a non-empty string of at most 200 characters");
  if (path === '/documents') return documentsError(error, body);
  const item = /^\/documents\/(\d+)$/.exec(path);
  if (item) return new ApiError('INVALID_DOCUMENT', `documents[${item[1]}] must be a non-empty string`);
  if (path === '/metadata') return new ApiError('INVALID_METADATA', "Field 'metadata' must be a JSON object");
  if (path.startsWith('/options')) return optionsError(error);
  if (path === '/priority') return new ApiError('INVALID_PRIORITY', "Field 'priority' must be one of low, normal, high");
  if (path === '/run_at') return new ApiError('INVALID_RUN_AT', "Field 'run_at' must be an ISO 8601 time with an offset, e.g. 2026-12-01T10:00:00+01:00");
  if (path === '/callback_url') return new ApiError('INVALID_CALLBACK_URL', "Field 'callback_url' must be a URL of at most 2048 characters");
  if (path.startsWith('/depends_on')) return new ApiError('INVALID_DEPENDENCY', "Field 'depends_on' must be an array of at most 100 job ids");
  return new ApiError('INVALID_BODY', `Field '${path.slice(1)}' ${error.message ?? 'is invalid'}`);
}

function rootError(error: ErrorObject): ApiError {
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    if (missing === 'documents') return new ApiError('NO_DOCUMENTS', 'No documents provided');
    return new ApiError('INVALID_MODEL', "Field 'model' is required");
  }
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return new ApiError('INVALID_BODY', `Unknown field '${extra}'; expected model, documents, metadata, options, priority, run_at, depends_on, documents_from, callback_url`);
  }
  return new ApiError('INVALID_BODY', 'Request body must be a JSON object with model and documents');
}

function documentsError(error: ErrorObject, body: unknown): ApiError {
  if (error.keyword === 'minItems') return new ApiError('NO_DOCUMENTS', 'No documents provided');
  if (error.keyword === 'maxItems') {
    const limit = (error.params as { limit: number }).limit;
    const got = (body as { documents: unknown[] }).documents.length;
    return new ApiError('BATCH_TOO_LARGE', `Maximum ${formatCount(limit)} documents per batch. Got ${formatCount(got)}.`);
  }
  return new ApiError('INVALID_BODY', "Field 'documents' must be an array of strings");
}

function optionsError(error: ErrorObject): ApiError {
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return new ApiError('INVALID_OPTIONS', `options.${extra} is not a known option; use truncate, dimensions or keep_alive`);
  }
  if (error.instancePath === '/options') return new ApiError('INVALID_OPTIONS', "Field 'options' must be a JSON object");
  return new ApiError('INVALID_OPTIONS', `options.${error.instancePath.slice('/options/'.length)} ${error.message ?? 'is invalid'}`);
}

/** The first schema failure of the list query as an ApiError. */
export function listQueryError(error: ErrorObject): ApiError {
  if (error.instancePath === '/limit') return new ApiError('INVALID_LIMIT', 'limit must be an integer from 1 to 1000');
  if (error.instancePath === '/status') {
    return new ApiError('INVALID_QUERY', 'status must be one of pending, running, completed, failed, cancelled, scheduled');
  }
  return new ApiError('INVALID_QUERY', `Query ${error.instancePath.slice(1)} ${error.message ?? 'is invalid'}`);
}

/**
 * Deepest nesting of arrays and objects accepted where a request value is serialized again
 * (batch `metadata`, the sync API's bodies forwarded to a node). JSON.parse reads any depth, but
 * JSON.stringify and other recursive walks overflow the stack some thousands of levels down,
 * which would surface as a 500; no real request comes near this.
 */
export const MAX_JSON_DEPTH = 512;

/** Whether `value` nests arrays or objects more than `limit` levels deep (iterative: it cannot overflow itself). */
export function nestedDeeperThan(value: unknown, limit: number = MAX_JSON_DEPTH): boolean {
  const pending: [unknown, number][] = [[value, 0]];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [item, depth] = next;
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (typeof child === 'object' && child !== null) pending.push([child, depth + 1]);
    }
  }
  return false;
}
