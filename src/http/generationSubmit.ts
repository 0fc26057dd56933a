/**
 * The bodies of `POST /api/batch/generate` and `POST /api/batch/chat`, checked and turned into
 * a job's items. Each item is stored as its request (JSON): the job's `options` merged under the
 * item's own, so an item is self-contained when it runs (and when a retry re-runs it).
 *
 * generate: `{model, prompts: [string]}` or `{model, requests: [{prompt, system?, options?, format?}]}`
 * chat:     `{model, conversations: [[{role, content}]]}` or `{model, requests: [{messages, options?, format?}]}`
 * both:     `options` (model options for every item), `metadata`, `keep_alive`.
 */
import type { EmbedOptions } from '../backends/types.js';
import { ApiError, formatCount } from '../errors.js';
import { METADATA_MAX_BYTES } from './schemas.js';
import { MAX_JSON_DEPTH, nestedDeeperThan } from './validation.js';

export type GenerationKind = 'generate' | 'chat';

export interface GenerationSubmit {
  readonly model: string;
  readonly items: string[];
  readonly metadata: Record<string, unknown>;
  readonly options: EmbedOptions;
}

type Body = Record<string, unknown>;

function isObject(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const LIST_FIELDS: Readonly<Record<GenerationKind, string>> = { generate: 'prompts', chat: 'conversations' };

export function parseGenerationSubmit(kind: GenerationKind, body: unknown, maxItems: number): GenerationSubmit {
  if (!isObject(body)) throw new ApiError('INVALID_BODY', 'The request body must be a JSON object');
  if (typeof body.model !== 'string' || body.model.trim() === '') throw new ApiError('INVALID_MODEL', "Field 'model' must be a non-empty string");
  const listField = LIST_FIELDS[kind];
  const list = body[listField];
  const requests = body.requests;
  if ((list === undefined) === (requests === undefined)) {
    throw new ApiError('INVALID_BODY', `Give exactly one of '${listField}' and 'requests'`);
  }
  const field = list !== undefined ? listField : 'requests';
  const raw = list ?? requests;
  if (!Array.isArray(raw)) throw new ApiError('INVALID_BODY', `Field '${field}' must be an array`);
  if (raw.length === 0) throw new ApiError('NO_DOCUMENTS', `Field '${field}' must not be empty`);
  if (raw.length > maxItems) throw new ApiError('BATCH_TOO_LARGE', `Batch size ${formatCount(raw.length)} exceeds the maximum of ${formatCount(maxItems)} items`);
  const jobOptions = modelOptions(body.options, 'options');
  const items = raw.map((entry: unknown, i) => {
    const request = list !== undefined ? shorthand(kind, entry, `${field}[${i}]`) : fullRequest(kind, entry, `${field}[${i}]`);
    const own = request.options as Body | undefined;
    const merged = jobOptions || own ? { ...jobOptions, ...own } : undefined;
    return JSON.stringify(merged ? { ...request, options: merged } : request);
  });
  return { model: body.model, items, metadata: metadataOf(body.metadata), options: { truncate: true, ...keepAliveOf(body.keep_alive) } };
}

function shorthand(kind: GenerationKind, entry: unknown, where: string): Body {
  if (kind === 'generate') {
    if (typeof entry !== 'string' || entry === '') throw new ApiError('INVALID_DOCUMENT', `${where} must be a non-empty string`);
    return { prompt: entry };
  }
  return { messages: messagesOf(entry, where) };
}

function fullRequest(kind: GenerationKind, entry: unknown, where: string): Body {
  if (!isObject(entry)) throw new ApiError('INVALID_DOCUMENT', `${where} must be an object`);
  const allowed = kind === 'generate' ? ['prompt', 'system', 'options', 'format'] : ['messages', 'options', 'format'];
  const unknown = Object.keys(entry).find((key) => !allowed.includes(key));
  if (unknown) throw new ApiError('INVALID_DOCUMENT', `${where} has an unknown field '${unknown}' (allowed: ${allowed.join(', ')})`);
  const out: Body = {};
  if (kind === 'generate') {
    if (typeof entry.prompt !== 'string' || entry.prompt === '') throw new ApiError('INVALID_DOCUMENT', `${where}.prompt must be a non-empty string`);
    out.prompt = entry.prompt;
    if (entry.system !== undefined) {
      if (typeof entry.system !== 'string') throw new ApiError('INVALID_DOCUMENT', `${where}.system must be a string`);
      out.system = entry.system;
    }
  } else {
    out.messages = messagesOf(entry.messages, `${where}.messages`);
  }
  const options = modelOptions(entry.options, `${where}.options`);
  if (options) out.options = options;
  if (entry.format !== undefined) {
    if (entry.format !== 'json' && !isObject(entry.format)) throw new ApiError('INVALID_DOCUMENT', `${where}.format must be "json" or a JSON schema object`);
    out.format = entry.format;
  }
  return out;
}

function messagesOf(value: unknown, where: string): Body[] {
  if (!Array.isArray(value) || value.length === 0) throw new ApiError('INVALID_DOCUMENT', `${where} must be a non-empty array of messages`);
  return value.map((message: unknown, i) => {
    if (!isObject(message) || typeof message.role !== 'string' || !['system', 'user', 'assistant', 'tool'].includes(message.role)) {
      throw new ApiError('INVALID_DOCUMENT', `${where}[${i}] must be {role, content} with role system, user, assistant or tool`);
    }
    if (typeof message.content !== 'string') throw new ApiError('INVALID_DOCUMENT', `${where}[${i}].content must be a string`);
    return { role: message.role, content: message.content };
  });
}

function modelOptions(value: unknown, where: string): Body | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || nestedDeeperThan(value)) throw new ApiError('INVALID_OPTIONS', `Field '${where}' must be an object of model options (at most ${MAX_JSON_DEPTH} levels deep)`);
  return value;
}

function metadataOf(value: unknown): Record<string, unknown> {
  if (value === undefined) return {};
  if (!isObject(value)) throw new ApiError('INVALID_METADATA', "Field 'metadata' must be an object");
  if (nestedDeeperThan(value)) throw new ApiError('INVALID_METADATA', `Field 'metadata' nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep`);
  if (Buffer.byteLength(JSON.stringify(value)) > METADATA_MAX_BYTES) throw new ApiError('INVALID_METADATA', `Field 'metadata' is over ${METADATA_MAX_BYTES / 1024} KiB when serialized`);
  return value;
}

function keepAliveOf(value: unknown): { keepAlive?: string | number } {
  if (value === undefined) return {};
  if (typeof value !== 'string' && (typeof value !== 'number' || !Number.isFinite(value))) throw new ApiError('INVALID_OPTIONS', "Field 'keep_alive' must be a duration string or a number of seconds");
  return { keepAlive: value };
}
