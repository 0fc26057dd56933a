/**
 * The OpenAI-compatible sync API under `/v1`: `POST /v1/embeddings` (through the pool's
 * interactive lane, `encoding_format` float or base64) and `GET /v1/models`. Errors, unknown
 * `/v1` routes included, answer in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`.
 */
import { endianness } from 'node:os';
import type {} from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { canonicalModel } from '../../backends/modelNames.js';
import type { BackendPool } from '../../backends/pool.js';
import { formatCount } from '../../errors.js';
import { CompatError, sendOpenAIError, toCompatError } from '../compatErrors.js';
import { clientSignal, embedThroughPool, jsonPieces, sendJsonPieces, vectorJson, type SyncEmbedSettings } from '../syncEmbed.js';

export interface OpenAIRouteOptions extends SyncEmbedSettings {
  readonly pool: BackendPool;
  /** Most inputs one call may carry (the batch document limit). */
  readonly maxInputs: number;
  readonly startedAt: number;
}

type Body = Record<string, unknown>;

/** Register with `{ prefix: '/v1' }`. */
export async function openaiRoutes(app: FastifyInstance, options: OpenAIRouteOptions): Promise<void> {
  const { pool } = options;
  const created = Math.floor(options.startedAt / 1000);
  const modelObject = (id: string): Record<string, unknown> => ({ id, object: 'model', created, owned_by: 'sollol' });

  app.setErrorHandler((error, request, reply) => sendOpenAIError(reply, toCompatError(error, request)));
  app.setNotFoundHandler((request, reply) => {
    sendOpenAIError(reply, new CompatError('NOT_FOUND', `Route ${request.method} ${request.url.split('?')[0]} not found`));
  });

  app.post('/embeddings', { schema: { tags: ['openai'], summary: 'Embeddings (OpenAI-compatible), through the interactive lane' } }, async (request, reply) => {
    const body = objectBody(request.body);
    const model = modelField(body);
    const inputs = embeddingInputs(body.input, options.maxInputs);
    const format = encodingFormat(body.encoding_format);
    const dimensions = dimensionsField(body.dimensions);
    const outcome = await embedThroughPool(pool, model, inputs, { truncate: true, ...(dimensions === undefined ? {} : { dimensions }) }, clientSignal(reply), options);
    const encode = format === 'base64' ? (v: Float32Array): string => `"${float32Base64(v)}"` : vectorJson;
    const tail =
      `],"model":${JSON.stringify(model)},"usage":{"prompt_tokens":${outcome.promptTokens},"total_tokens":${outcome.promptTokens}}}`;
    const item = (v: Float32Array, i: number): string => `{"object":"embedding","index":${i},"embedding":${encode(v)}}`;
    return sendJsonPieces(reply, jsonPieces('{"object":"list","data":[', outcome.vectors, item, tail), outcome.vectors.length);
  });

  app.get('/models', { schema: { tags: ['openai'], summary: 'Models served by the healthy nodes (OpenAI-compatible)' } }, async () => ({
    object: 'list',
    data: pool.servedModels().map(modelObject),
  }));

  // Model ids may contain slashes (`BAAI/bge-m3`), hence the wildcard. The router has already
  // percent-decoded it (`BAAI%2Fbge-m3` arrives as `BAAI/bge-m3`): decoding again would read
  // `%25` as a broken escape (a URIError, i.e. a 500) and `%2525` as `%`.
  app.get('/models/*', { schema: { tags: ['openai'], summary: 'One served model (OpenAI-compatible)' } }, async (request) => {
    const id = (request.params as { '*': string })['*'];
    const served = pool.servedModels().find((m) => m === canonicalModel(id));
    if (served === undefined) throw new CompatError('MODEL_NOT_FOUND', `The model '${id}' does not exist or no healthy backend serves it`, { param: 'model' });
    return modelObject(served);
  });
}

/** OpenAI's base64 embedding: the float32 values' little-endian bytes. */
export function float32Base64(vector: Float32Array): string {
  if (endianness() === 'LE') return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}

function objectBody(body: unknown): Body {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new CompatError('INVALID_BODY', 'The request body must be a JSON object');
  return body as Body;
}

function modelField(body: Body): string {
  const model = body.model;
  if (typeof model !== 'string' || model.trim() === '') throw new CompatError('INVALID_MODEL', 'You must provide a model parameter', { param: 'model' });
  if (model.length > 200) throw new CompatError('INVALID_MODEL', 'model must be at most 200 characters', { param: 'model' });
  return model;
}

function embeddingInputs(input: unknown, max: number): string[] {
  const tokens = (x: unknown): boolean => typeof x === 'number' || (Array.isArray(x) && x.length > 0 && x.every((t) => typeof t === 'number'));
  let inputs: string[];
  if (typeof input === 'string') inputs = [input];
  else if (Array.isArray(input)) {
    if (input.length > 0 && input.every(tokens)) {
      throw new CompatError('INVALID_INPUT', 'Token arrays are not supported by this gateway; send the input as text', { param: 'input' });
    }
    input.forEach((item, i) => {
      if (typeof item !== 'string') throw new CompatError('INVALID_INPUT', `input[${i}] must be a string`, { param: 'input' });
    });
    inputs = input as string[];
  } else if (input === undefined || input === null) {
    throw new CompatError('INVALID_INPUT', "Missing required parameter: 'input'", { param: 'input' });
  } else throw new CompatError('INVALID_INPUT', 'input must be a string or an array of strings', { param: 'input' });
  if (inputs.length === 0) throw new CompatError('INVALID_INPUT', 'input must not be an empty array', { param: 'input' });
  const empty = inputs.indexOf('');
  if (empty >= 0) throw new CompatError('INVALID_INPUT', inputs.length === 1 ? 'input must not be an empty string' : `input[${empty}] is an empty string`, { param: 'input' });
  if (inputs.length > max) {
    throw new CompatError('BATCH_TOO_LARGE', `Maximum ${formatCount(max)} inputs per request. Got ${formatCount(inputs.length)}.`, { param: 'input' });
  }
  return inputs;
}

function encodingFormat(value: unknown): 'float' | 'base64' {
  if (value === undefined || value === null || value === 'float') return 'float';
  if (value === 'base64') return 'base64';
  throw new CompatError('INVALID_OPTIONS', `encoding_format must be "float" or "base64", got ${JSON.stringify(value)}`, { param: 'encoding_format' });
}

function dimensionsField(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65536) {
    throw new CompatError('INVALID_OPTIONS', 'dimensions must be an integer from 1 to 65536', { param: 'dimensions' });
  }
  return value;
}
