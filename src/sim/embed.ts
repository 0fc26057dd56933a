/**
 * `POST /api/embed` and the legacy `POST /api/embeddings`, in Ollama's wire format.
 * Response bodies are assembled as bytes from cached or pre-printed vector JSON, never
 * JSON.stringify'd whole, so the node's CPU cost stays out of gateway benchmarks.
 */

import type { ServerResponse } from 'node:http';
import { pauseUntil } from './behaviour.js';
import { elapsedNs, HttpError, optionalString, requiredModel, sendJson, unknownModel } from './http.js';
import type { ServedModel } from './models.js';
import type { SimState } from './state.js';
import { JsonBytes, simVectorJsonRoom } from './vectors.js';

/** Room for the answer's closing fields (three durations and a count). */
const TAIL_BYTES = 128;

/** `input` as Ollama accepts it: a string (empty means none) or an array of strings. */
function parseInputs(input: unknown): string[] {
  if (input === undefined || input === null) return [];
  if (typeof input === 'string') return input === '' ? [] : [input];
  if (Array.isArray(input) && input.every((item): item is string => typeof item === 'string')) return input;
  throw new HttpError(400, 'invalid input type');
}

function parseTruncate(value: unknown): boolean | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'boolean') throw new HttpError(400, 'json: cannot unmarshal into field truncate of type bool');
  return value;
}

function parseDimensions(value: unknown): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new HttpError(400, 'json: cannot unmarshal into field dimensions of type int');
  }
  return value;
}

function parseKeepAlive(value: unknown): string | number | null {
  return typeof value === 'string' || typeof value === 'number' ? value : null;
}

function parseOptions(value: unknown): Readonly<Record<string, unknown>> | null {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
}

/**
 * Inputs cut to the context, as the cut text is what gets embedded; with
 * `truncate: false` an overlong input fails the whole call, as in Ollama.
 */
function fitToContext(texts: string[], maxChars: number, mayTruncate: boolean): string[] {
  return texts.map((text) => {
    if (text.length <= maxChars) return text;
    if (!mayTruncate) throw new HttpError(400, 'the input length exceeds the context length');
    return text.slice(0, maxChars);
  });
}

/** A rough token count (4 characters each), for `prompt_eval_count`. */
function tokenCount(texts: readonly string[]): number {
  let tokens = 0;
  for (const text of texts) tokens += Math.max(1, Math.ceil(text.length / 4));
  return tokens;
}

/** Ollama's `dimensions`: honoured when smaller than the model's, ignored otherwise. */
function outputDims(model: ServedModel, dimensions: number | null): number {
  return dimensions !== null && dimensions > 0 && dimensions < model.dims ? dimensions : model.dims;
}

function isPoisoned(state: SimState, text: string): boolean {
  const poison = state.options.poison;
  return poison === null || text.includes(poison);
}

/** The poison error for a call holding a poisoned document, if the node is set to answer one. */
function poisonFailure(state: SimState, texts: readonly string[]): HttpError | undefined {
  const kind = state.options.poisonError;
  if (kind === 'none' || !texts.some((t) => isPoisoned(state, t))) return undefined;
  state.counters.failures++;
  return kind === 'nan500' ? new HttpError(500, 'failed to encode response: json: unsupported value: NaN') : new HttpError(400, 'the input length exceeds the context length');
}

/** Sends an answer assembled in `out` (200), then hands its buffer back for reuse. */
function sendJsonBytes(res: ServerResponse, out: JsonBytes): void {
  if (res.destroyed || res.headersSent) return;
  const body = out.result();
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  // 'finish' (end's callback) comes once the socket has taken every byte; a call cut
  // short never gets there, and its buffer is left to the GC.
  res.end(body, (error?: unknown) => {
    if (error === undefined || error === null) out.release();
  });
}

/** Appends the vector JSON of one document to `out`: the model's, or the configured bad shape for a poisoned one. */
function writeVectorJson(state: SimState, modelKey: string, text: string, dims: number, out: JsonBytes): void {
  const shape = state.options.badVector;
  if (shape === 'none' || !isPoisoned(state, text)) {
    state.cache.write(modelKey, text, dims, out);
    return;
  }
  if (shape === 'short') {
    state.cache.write(modelKey, text, Math.max(1, dims - 1), out);
    return;
  }
  const good = state.cache.json(modelKey, text, dims).toString('latin1');
  const first = { null: 'null', string: '"NaN"', boolean: 'true', huge: '1e400' }[shape];
  const comma = good.indexOf(',');
  out.text(`[${first}${comma < 0 ? ']' : good.slice(comma)}`);
}

/**
 * Runs one call on the simulated runner: queue (serial), hang, failure, then the answer, due
 * `delayPerCallMs + delayPerDocMs x inputs` after the call began being served (RunnerClock:
 * `prepare` builds the answer within that time, so the node's own work is not added to it),
 * all while holding the runner so `inFlight` covers the whole call. `prepare` gets the
 * nanoseconds spent before the runner took the call (Ollama's load_duration covers the same
 * scheduling wait) and returns what sends the answer.
 */
async function onRunner(
  state: SimState,
  texts: readonly string[],
  signal: AbortSignal,
  startNs: bigint,
  prepare: (loadNs: number) => () => void,
): Promise<void> {
  let arrivedAt = performance.now() - elapsedNs(startNs) / 1e6;
  await state.gate.acquire(signal);
  try {
    if (state.options.hang) {
      await state.hang.wait(signal);
      arrivedAt = performance.now();
    }
    const loadNs = elapsedNs(startNs);
    if (state.dice.roll(state.options.failureRate)) {
      state.counters.failures++;
      throw new HttpError(500, 'simulated failure');
    }
    const poisoned = poisonFailure(state, texts);
    if (poisoned) throw poisoned;
    const { delayPerCallMs, delayPerDocMs, serial } = state.options;
    const deadline = state.clock.begin(arrivedAt, delayPerCallMs + delayPerDocMs * texts.length, serial);
    try {
      const send = prepare(loadNs);
      await pauseUntil(deadline, signal);
      send();
    } catch (error) {
      state.clock.abandon(performance.now());
      throw error;
    }
  } finally {
    state.gate.release();
  }
}

export async function handleEmbed(
  state: SimState,
  body: Record<string, unknown>,
  res: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  const startNs = process.hrtime.bigint();
  const requested = requiredModel(body);
  const inputs = parseInputs(body['input']);
  const truncate = parseTruncate(body['truncate']);
  const dimensions = parseDimensions(body['dimensions']);
  state.counters.lastEmbed = {
    endpoint: '/api/embed',
    model: requested,
    inputs: inputs.length,
    truncate,
    dimensions,
    keepAlive: parseKeepAlive(body['keep_alive']),
    options: parseOptions(body['options']),
  };
  state.counters.addCall(inputs);
  const model = state.catalog.resolve(requested);
  if (!model) throw unknownModel(requested);
  const texts = fitToContext(inputs, state.options.maxInputChars, truncate !== false);
  state.touchModel(model);
  const head = `{"model":${JSON.stringify(requested)},"embeddings":[`;
  if (texts.length === 0) {
    // Ollama answers an empty input without running the model (it only loads it).
    sendJson(res, 200, `${head}],"total_duration":${elapsedNs(startNs)},"load_duration":0,"prompt_eval_count":0}`);
    return;
  }
  const dims = outputDims(model, dimensions);
  await onRunner(state, texts, signal, startNs, (loadNs) => {
    // Sized for the whole answer up front (it grows if a poisoned shape is longer).
    const out = new JsonBytes(3 * head.length + texts.length * (simVectorJsonRoom(dims) + 1) + TAIL_BYTES);
    out.text(head);
    for (let i = 0; i < texts.length; i++) {
      if (i > 0) out.byte(0x2c); // ,
      writeVectorJson(state, model.key, texts[i] ?? '', dims, out);
    }
    const tokens = tokenCount(texts);
    return () => {
      out.text(`],"total_duration":${elapsedNs(startNs)},"load_duration":${loadNs},"prompt_eval_count":${tokens}}`);
      state.counters.addDocuments(model.name, texts.length);
      sendJsonBytes(res, out);
    };
  });
}

/** The pre-0.3 endpoint: one `prompt`, one `embedding`, no `truncate` switch (always cuts). */
export async function handleLegacyEmbeddings(
  state: SimState,
  body: Record<string, unknown>,
  res: ServerResponse,
  signal: AbortSignal,
): Promise<void> {
  const startNs = process.hrtime.bigint();
  const requested = requiredModel(body);
  const prompt = optionalString(body, 'prompt', '');
  state.counters.lastEmbed = {
    endpoint: '/api/embeddings',
    model: requested,
    inputs: prompt === '' ? 0 : 1,
    truncate: null,
    dimensions: null,
    keepAlive: parseKeepAlive(body['keep_alive']),
    options: parseOptions(body['options']),
  };
  const model = state.catalog.resolve(requested);
  if (!model) throw unknownModel(requested);
  state.touchModel(model);
  if (prompt === '') {
    // Ollama's "an empty request loads the model".
    sendJson(res, 200, '{"embedding":[]}');
    return;
  }
  const [text = ''] = fitToContext([prompt], state.options.maxInputChars, true);
  await onRunner(state, [text], signal, startNs, () => {
    const out = new JsonBytes(simVectorJsonRoom(model.dims) + 16);
    out.text('{"embedding":');
    writeVectorJson(state, model.key, text, model.dims, out);
    out.text('}');
    return () => {
      state.counters.addDocuments(model.name, 1);
      sendJsonBytes(res, out);
    };
  });
}
