/**
 * How a batch's lines become jobs and how the jobs' item results become output lines
 * (docs/ARCHITECTURE.md, "OpenAI Batch API"). Pure functions: the grouping is recomputed from
 * the input file whenever it is needed (at creation and at finalisation, after a restart too),
 * so only the job ids are stored with the batch.
 *
 * - `/v1/embeddings` lines: one `embed` job per (model, dimensions); every input of every line is
 *   an item, a line owning the range of its inputs. The body is the sync route's: `{object:
 *   "list", data: [{object: "embedding", index, embedding}], model, usage}` (float or base64).
 * - `/v1/chat/completions` lines: one `chat` job per model, a line one item; the OpenAI request
 *   is turned into the node's `/api/chat` request the way Ollama's OpenAI layer does it
 *   (max_tokens -> num_predict, temperature, top_p, seed, stop, penalties, response_format ->
 *   format, tools), and the answer into the `chat.completion` object that layer answers.
 * - `/v1/completions` lines: the same with `generate` jobs and `text_completion` objects.
 */
import { randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { vectorJson } from '../http/syncEmbed.js';
import type { ItemResult, JobType } from '../jobs/model.js';
import type { BatchEndpoint, BatchRequestLine } from './inputFile.js';

export interface PlannedGroup {
  readonly key: string;
  readonly type: JobType;
  readonly model: string;
  readonly dimensions?: number;
  /** The job's items: texts (embed) or requests as JSON (chat, generate). */
  readonly documents: string[];
  /** Per line of the group: the line and its item range [start, end). */
  readonly lines: { readonly line: BatchRequestLine; readonly start: number; readonly end: number }[];
}

/** Most groups one batch may have (distinct models, or embedding dimensions, in its file). */
export const MAX_BATCH_GROUPS = 16;
/** Most jobs one batch may make (a group over `--max-batch-documents` items is cut into several). */
export const MAX_BATCH_JOBS = 64;
/** OpenAI's own rule: an embeddings batch holds at most this many inputs over all its lines. */
export const MAX_EMBEDDING_INPUTS = 50_000;

/**
 * A part of a group, one job: the group's lines [from, from + count), its items rebased to the
 * part. The first part keeps the group's key; a later one adds the index of its first line, so
 * the finaliser finds the parts again from the batch's stored job refs (key and line count,
 * {@link partsFromRefs}) whatever `--max-batch-documents` is by then.
 */
function partOf(group: PlannedGroup, from: number, count: number): PlannedGroup {
  const lines = group.lines.slice(from, from + count);
  const start = lines[0]?.start ?? 0;
  const end = lines[lines.length - 1]?.end ?? start;
  return {
    ...group,
    key: from === 0 ? group.key : `${group.key}\u0000#${from}`,
    documents: group.documents.slice(start, end),
    lines: lines.map((l) => ({ line: l.line, start: l.start - start, end: l.end - start })),
  };
}

/**
 * The groups cut at line boundaries into jobs of at most `maxItems` items (OpenAI takes 50,000
 * requests per batch, a job at most `--max-batch-documents` items), or the first line that
 * alone holds more than `maxItems` items.
 */
export function splitGroups(groups: readonly PlannedGroup[], maxItems: number): PlannedGroup[] | { tooBig: BatchRequestLine; items: number } {
  const parts: PlannedGroup[] = [];
  for (const group of groups) {
    let from = 0;
    let items = 0;
    for (let i = 0; i < group.lines.length; i++) {
      const { line, start, end } = group.lines[i]!;
      if (end - start > maxItems) return { tooBig: line, items: end - start };
      if (items + (end - start) > maxItems) {
        parts.push(partOf(group, from, i - from));
        from = i;
        items = 0;
      }
      items += end - start;
    }
    parts.push(partOf(group, from, group.lines.length - from));
  }
  return parts;
}

/**
 * The parts of `group` the batch's job refs name (key and line count), in line order; lines no
 * ref covers come back with `ref` undefined.
 */
export function partsFromRefs<R extends { readonly group: string; readonly lines: number }>(group: PlannedGroup, refs: readonly R[]): { part: PlannedGroup; ref: R | undefined }[] {
  const firstLine = (ref: R): number | undefined => {
    if (ref.group === group.key) return 0;
    const prefix = `${group.key}\u0000#`;
    if (!ref.group.startsWith(prefix)) return undefined;
    const n = Number(ref.group.slice(prefix.length));
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  };
  const mine = refs.flatMap((ref) => {
    const from = firstLine(ref);
    return from === undefined ? [] : [{ from, ref }];
  }).sort((a, b) => a.from - b.from);
  const out: { part: PlannedGroup; ref: R | undefined }[] = [];
  let next = 0;
  for (const { from, ref } of mine) {
    if (from < next || from >= group.lines.length) continue;
    if (from > next) out.push({ part: partOf(group, next, from - next), ref: undefined });
    const count = Math.min(ref.lines, group.lines.length - from);
    out.push({ part: partOf(group, from, count), ref });
    next = from + count;
  }
  if (next < group.lines.length) out.push({ part: partOf(group, next, group.lines.length - next), ref: undefined });
  return out;
}

type Body = Record<string, unknown>;

export function planGroups(endpoint: BatchEndpoint, requests: readonly BatchRequestLine[]): PlannedGroup[] {
  const groups = new Map<string, PlannedGroup>();
  for (const line of requests) {
    const dimensions = endpoint === '/v1/embeddings' && typeof line.body.dimensions === 'number' ? line.body.dimensions : undefined;
    const key = `${line.model}\u0000${dimensions ?? ''}`;
    let group = groups.get(key);
    if (!group) {
      group = { key, type: JOB_TYPE[endpoint], model: line.model, ...(dimensions === undefined ? {} : { dimensions }), documents: [], lines: [] };
      groups.set(key, group);
    }
    const start = group.documents.length;
    if (endpoint === '/v1/embeddings') {
      const input = line.body.input;
      group.documents.push(...(typeof input === 'string' ? [input] : (input as string[])));
    } else {
      group.documents.push(JSON.stringify(endpoint === '/v1/chat/completions' ? chatRequest(line.body) : completionRequest(line.body)));
    }
    group.lines.push({ line, start, end: group.documents.length });
  }
  return [...groups.values()];
}

const JOB_TYPE: Readonly<Record<BatchEndpoint, JobType>> = { '/v1/embeddings': 'embed', '/v1/chat/completions': 'chat', '/v1/completions': 'generate' };

/** Ollama's OpenAI layer: request fields to model options. */
function modelOptions(body: Body): Body | undefined {
  const options: Body = {};
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (typeof maxTokens === 'number') options.num_predict = maxTokens;
  for (const key of ['temperature', 'top_p', 'seed', 'frequency_penalty', 'presence_penalty'] as const) {
    if (typeof body[key] === 'number') options[key] = body[key];
  }
  if (typeof body.stop === 'string') options.stop = [body.stop];
  else if (Array.isArray(body.stop)) options.stop = body.stop;
  return Object.keys(options).length > 0 ? options : undefined;
}

function formatOf(body: Body): unknown {
  const format = body.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  if (format?.type === 'json_object') return 'json';
  if (format?.type === 'json_schema' && format.json_schema?.schema !== undefined) return format.json_schema.schema;
  return undefined;
}

/** Content parts to text (text parts joined); images are passed to Ollama as base64 data. */
function messageOf(message: Body): Body {
  const out: Body = { role: message.role };
  const content = message.content;
  if (Array.isArray(content)) {
    const parts = content as { type?: unknown; text?: unknown; image_url?: unknown }[];
    out.content = parts.filter((p) => p.type === 'text' && typeof p.text === 'string').map((p) => p.text).join('\n');
    const images = parts
      .filter((p) => p.type === 'image_url')
      .map((p) => {
        const url = typeof p.image_url === 'string' ? p.image_url : (p.image_url as { url?: unknown } | undefined)?.url;
        return typeof url === 'string' ? url.replace(/^data:[^,]*;base64,/, '') : undefined;
      })
      .filter((x): x is string => x !== undefined);
    if (images.length > 0) out.images = images;
  } else out.content = typeof content === 'string' ? content : '';
  for (const key of ['name', 'tool_calls', 'tool_call_id'] as const) if (message[key] !== undefined) out[key] = message[key];
  return out;
}

export function chatRequest(body: Body): Body {
  const request: Body = { messages: (body.messages as Body[]).map(messageOf) };
  const options = modelOptions(body);
  if (options) request.options = options;
  const format = formatOf(body);
  if (format !== undefined) request.format = format;
  if (Array.isArray(body.tools)) request.tools = body.tools;
  return request;
}

export function completionRequest(body: Body): Body {
  const request: Body = { prompt: body.prompt };
  if (typeof body.suffix === 'string') request.suffix = body.suffix;
  const options = modelOptions(body);
  if (options) request.options = options;
  return request;
}

interface GenerationResult {
  response?: string;
  message?: { role: string; content: string; tool_calls?: unknown[] };
  done_reason: string | null;
  prompt_eval_count: number | null;
  eval_count: number | null;
}

function usage(result: GenerationResult): Body {
  const prompt = result.prompt_eval_count ?? 0;
  const completion = result.eval_count ?? 0;
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

const openaiId = (prefix: string): string => `${prefix}-${randomBytes(12).toString('hex')}`;

/** The `chat.completion` object Ollama's OpenAI layer answers for this `/api/chat` result. */
export function chatCompletionBody(model: string, resultJson: string, created: number): Body {
  const result = JSON.parse(resultJson) as GenerationResult;
  const message: Body = { role: result.message?.role ?? 'assistant', content: result.message?.content ?? '' };
  const tools = result.message?.tool_calls;
  if (Array.isArray(tools) && tools.length > 0) message.tool_calls = tools;
  const finish = Array.isArray(tools) && tools.length > 0 ? 'tool_calls' : result.done_reason;
  return {
    id: openaiId('chatcmpl'),
    object: 'chat.completion',
    created,
    model,
    system_fingerprint: 'fp_ollama',
    choices: [{ index: 0, message, finish_reason: finish }],
    usage: usage(result),
  };
}

/** The `text_completion` object for this `/api/generate` result. */
export function completionBody(model: string, resultJson: string, created: number): Body {
  const result = JSON.parse(resultJson) as GenerationResult;
  return {
    id: openaiId('cmpl'),
    object: 'text_completion',
    created,
    model,
    system_fingerprint: 'fp_ollama',
    choices: [{ text: result.response ?? '', index: 0, finish_reason: result.done_reason }],
    usage: usage(result),
  };
}

function float32Base64(vector: Float32Array): string {
  if (endianness() === 'LE') return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}

/** The float32 values as the sync route prints them (its own printer), read back as numbers. */
function float32Numbers(vector: Float32Array): number[] {
  return JSON.parse(vectorJson(vector)) as number[];
}

/** Where a backend does not say, about 4 characters make one token (the sync route's estimate). */
function estimateTokens(inputs: readonly string[]): number {
  let tokens = 0;
  for (const text of inputs) tokens += Math.max(1, Math.ceil(text.length / 4));
  return tokens;
}

export type LineOutcome =
  | { readonly ok: true; readonly body: Body }
  | { readonly ok: false; readonly code: string; readonly message: string }
  /** Not run (the batch was cancelled or expired first). */
  | { readonly ok: 'pending' };

/** A line's outcome from its items' results (all of the line's range, in order). */
export function lineOutcome(endpoint: BatchEndpoint, line: BatchRequestLine, inputs: readonly string[], results: readonly ItemResult[], created: number): LineOutcome {
  const failed = results.find((r) => r.state === 'failed');
  if (failed && failed.state === 'failed') return { ok: false, code: failed.code, message: failed.error };
  if (results.length === 0 || results.some((r) => r.state === 'pending')) return { ok: 'pending' };
  if (endpoint === '/v1/embeddings') {
    const base64 = line.body.encoding_format === 'base64';
    const data = results.map((r, index) => ({ object: 'embedding', index, embedding: r.state === 'done' ? (base64 ? float32Base64(r.vector) : float32Numbers(r.vector)) : [] }));
    const tokens = estimateTokens(inputs);
    return { ok: true, body: { object: 'list', data, model: line.model, usage: { prompt_tokens: tokens, total_tokens: tokens } } };
  }
  const result = results[0]!;
  if (result.state !== 'generated') return { ok: false, code: 'INTERNAL_ERROR', message: 'the item has no generation result' };
  return { ok: true, body: endpoint === '/v1/chat/completions' ? chatCompletionBody(line.model, result.result, created) : completionBody(line.model, result.result, created) };
}
