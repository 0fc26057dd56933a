/**
 * OpenAI Batch API input files (JSONL, one request per line): bounds and line-by-line
 * validation, each error naming its line (1-based, as OpenAI's `BatchError.line`). A line is
 * `{"custom_id", "method": "POST", "url", "body"}`; `url` is one of the supported endpoints,
 * `custom_id` unique in the file, and `body` valid for the endpoint by the very checks the sync
 * route makes (http/openaiBodies.ts), so a line is refused exactly when the sync call would be.
 * Used by `POST /v1/files` (http/routes/openaiFiles.ts) and `POST /v1/batches` (batches.ts).
 */
import { chatCompletionProblem, completionProblem, embeddingProblem, type BodyProblem } from '../http/openaiBodies.js';

export const BATCH_ENDPOINTS = ['/v1/embeddings', '/v1/chat/completions', '/v1/completions'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

/** OpenAI's own limits: 50,000 requests and 200 MB per input file. */
export const MAX_INPUT_LINES = 50_000;
export const MAX_INPUT_BYTES = 200 * 1024 * 1024;
/** Most line errors reported for one file: the first ones say what is wrong. */
export const MAX_REPORTED_ERRORS = 100;

/** OpenAI's `BatchError`. */
export interface BatchLineError {
  readonly code: string;
  readonly message: string;
  readonly param: string | null;
  readonly line: number | null;
}

export interface BatchRequestLine {
  readonly line: number;
  readonly customId: string;
  readonly url: BatchEndpoint;
  readonly body: Readonly<Record<string, unknown>>;
  /** `body.model`, checked to be a non-empty string. */
  readonly model: string;
}

export type InputFileVerdict =
  | { readonly ok: true; readonly requests: readonly BatchRequestLine[] }
  | { readonly ok: false; readonly errors: readonly BatchLineError[] };

const BODY_CHECKS: Readonly<Record<BatchEndpoint, (body: unknown) => BodyProblem | undefined>> = {
  '/v1/embeddings': embeddingProblem,
  '/v1/chat/completions': chatCompletionProblem,
  '/v1/completions': completionProblem,
};

function isEndpoint(value: unknown): value is BatchEndpoint {
  return typeof value === 'string' && (BATCH_ENDPOINTS as readonly string[]).includes(value);
}

/**
 * Validates a whole file: at upload without `endpoint`, for a batch on `endpoint` (every line
 * must then use it, as OpenAI requires).
 * Blank lines (a trailing newline) are skipped; streaming requests are refused (a batch answer is
 * one body per line).
 */
export function validateInputFile(content: Buffer | string, endpoint?: BatchEndpoint): InputFileVerdict {
  const bytes = typeof content === 'string' ? Buffer.byteLength(content) : content.length;
  if (bytes > MAX_INPUT_BYTES) return fail([{ code: 'file_too_large', message: `The file is ${bytes} bytes; at most ${MAX_INPUT_BYTES} are accepted`, param: null, line: null }]);
  const lines = (typeof content === 'string' ? content : content.toString('utf8')).split('\n');
  const errors: BatchLineError[] = [];
  const requests: BatchRequestLine[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < lines.length && errors.length < MAX_REPORTED_ERRORS; i++) {
    const text = lines[i]!.replace(/\r$/, '');
    if (text.trim() === '') continue;
    const line = i + 1;
    const checked = checkLine(text, line, endpoint, seen);
    if ('code' in checked) errors.push(checked);
    else requests.push(checked);
  }
  if (errors.length > 0) return fail(errors);
  if (requests.length === 0) return fail([{ code: 'empty_file', message: 'The file has no requests', param: null, line: null }]);
  if (requests.length > MAX_INPUT_LINES) {
    return fail([{ code: 'too_many_requests', message: `The file has ${requests.length} requests; at most ${MAX_INPUT_LINES} are accepted`, param: null, line: null }]);
  }
  return { ok: true, requests };
}

function fail(errors: BatchLineError[]): InputFileVerdict {
  return { ok: false, errors };
}

function checkLine(text: string, line: number, endpoint: BatchEndpoint | undefined, seen: Set<string>): BatchRequestLine | BatchLineError {
  const error = (code: string, message: string, param: string | null): BatchLineError => ({ code, message: `Line ${line}: ${message}`, param, line });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return error('invalid_json', 'not valid JSON', null);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return error('invalid_request', 'must be a JSON object', null);
  const { custom_id: customId, method, url, body } = value as Record<string, unknown>;
  if (typeof customId !== 'string' || customId === '') return error('missing_custom_id', 'custom_id must be a non-empty string', 'custom_id');
  if (seen.has(customId)) return error('duplicate_custom_id', `custom_id ${JSON.stringify(customId)} is used by an earlier line`, 'custom_id');
  seen.add(customId);
  if (method !== 'POST') return error('invalid_method', 'method must be "POST"', 'method');
  if (!isEndpoint(url)) return error('invalid_url', `url must be one of ${BATCH_ENDPOINTS.join(', ')}`, 'url');
  if (endpoint !== undefined && url !== endpoint) return error('mismatched_url', `url ${url} differs from the batch endpoint ${endpoint}`, 'url');
  const problem = BODY_CHECKS[url](body);
  if (problem) return error('invalid_body', problem.message, `body.${problem.param}`);
  const fields = body as Record<string, unknown>;
  if (fields.stream === true) return error('invalid_body', 'stream must not be true in a batch', 'body.stream');
  return { line, customId, url, body: fields, model: fields.model as string };
}
