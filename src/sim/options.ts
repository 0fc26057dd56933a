/**
 * The simulated node's behaviour knobs, their defaults, and their validation. The same
 * validation serves `startSimNode`, `SimNode.configure` and `POST /sim/config`, so a
 * bad value is refused identically whichever way it arrives.
 */

/** Served models: name to dimensions, `null` meaning "use {@link SimOptions.dims}". */
export type SimModels = Readonly<Record<string, number | null>>;

/**
 * Bad vector shapes the node can answer with ({@link SimOptions.badVector}): the first element
 * `null`, the string `"NaN"`, `true`, or the literal `1e400` (Infinity once parsed); or
 * `short`, a vector one element shorter than the model's.
 */
export const SIM_BAD_VECTORS = ['none', 'null', 'string', 'boolean', 'huge', 'short'] as const;
export type SimBadVector = (typeof SIM_BAD_VECTORS)[number];

/**
 * Whole-call failures for calls holding a poisoned document ({@link SimOptions.poisonError}):
 * `nan500` is bge-m3's 500 `failed to encode response: json: unsupported value: NaN`,
 * `reject400` a 400 as for an over-long input.
 */
export const SIM_POISON_ERRORS = ['none', 'nan500', 'reject400'] as const;
export type SimPoisonError = (typeof SIM_POISON_ERRORS)[number];

/** Everything that shapes how the simulated node answers. All of it can change at runtime. */
export interface SimOptions {
  /**
   * Dimensions of every served model whose entry in {@link SimOptions.models} is `null`,
   * and of unknown models served because of {@link SimOptions.acceptAnyModel}.
   * @defaultValue 768
   */
  readonly dims: number;
  /**
   * Models the node serves and lists in `/api/tags`. A name without a tag is served
   * as `name:latest`, and requests may use either form.
   * @defaultValue `{ 'nomic-embed-text': null, 'mxbai-embed-large': 1024, 'all-minilm': 384 }`
   */
  readonly models: SimModels;
  /**
   * Models listed in `/api/tags` but answered 404 "not found" when used, as a node
   * does when a model was removed after the gateway last looked.
   * @defaultValue `[]`
   */
  readonly rejectModels: readonly string[];
  /**
   * Serve any model name (at {@link SimOptions.dims}) instead of answering 404, for
   * benchmarks that should not care about model names.
   * @defaultValue false
   */
  readonly acceptAnyModel: boolean;
  /**
   * Fixed time each embed call takes, in milliseconds, like a model's per-call overhead.
   * @defaultValue 0
   */
  readonly delayPerCallMs: number;
  /**
   * Extra time per input of an embed call, in milliseconds, so batch size matters.
   * @defaultValue 0
   */
  readonly delayPerDocMs: number;
  /**
   * Handle one embed call at a time and queue the others (never reject them), as
   * Ollama does for embedding models.
   * @defaultValue false
   */
  readonly serial: boolean;
  /**
   * Fraction (0..1) of embed calls answered 500 `{"error":"simulated failure"}`.
   * @defaultValue 0
   */
  readonly failureRate: number;
  /**
   * Seed for the failure draws, making which calls fail reproducible (in arrival
   * order); `null` draws from `Math.random`. Setting it (again) restarts the sequence.
   * @defaultValue null
   */
  readonly failureSeed: number | null;
  /**
   * Accept model calls and never answer them, until this is turned off again (the
   * parked calls then proceed), the client goes away, or the node is closed. Metadata
   * endpoints (`/api/tags`, `/api/version`, ...) keep answering, as they do when an
   * Ollama runner is stuck. In serial mode a hung call holds the queue, as it would.
   * @defaultValue false
   */
  readonly hang: boolean;
  /**
   * Behave like Ollama older than 0.3: no `/api/embed` (404 `404 page not found`),
   * only the legacy `/api/embeddings`.
   * @defaultValue false
   */
  readonly legacyOnly: boolean;
  /**
   * Longest input, in characters, the model's context takes. Longer inputs are cut to
   * this length (and embedded as the cut text) unless the call sets `truncate: false`,
   * which is answered 400.
   * @defaultValue 8192
   */
  readonly maxInputChars: number;
  /**
   * Memory for serialised vectors, in MiB, so repeated texts cost almost nothing
   * (a 768-dim vector takes ~9.3 KiB: 256 MiB holds ~28,000). Held outside the JS heap; a
   * text's vector is kept from its second call on (the first only counts its size);
   * 0 disables the cache.
   * @defaultValue 256
   */
  readonly cacheMb: number;
  /**
   * Documents containing this text are "poisoned": they get the {@link SimOptions.badVector}
   * shape, and calls holding one fail with {@link SimOptions.poisonError}. `null` poisons every
   * document (a sick node).
   * @defaultValue null
   */
  readonly poison: string | null;
  /**
   * The shape of each poisoned document's vector (`none`: a good vector). With `short` and a
   * poison text, an answer holding poisoned and clean documents mixes lengths.
   * @defaultValue 'none'
   */
  readonly badVector: SimBadVector;
  /**
   * How a call holding a poisoned document fails, every time (`none`: it does not).
   * @defaultValue 'none'
   */
  readonly poisonError: SimPoisonError;
  /**
   * Generations (`/api/generate`, `/api/chat`, `/v1/chat/completions`, `/v1/completions`)
   * the node runs at once, like Ollama's `OLLAMA_NUM_PARALLEL`; more wait in arrival order.
   * @defaultValue 1
   */
  readonly generateParallel: number;
  /**
   * Time each generated token takes, in milliseconds, so a generation costs
   * `delayPerCallMs + tokens * delayPerTokenMs` of one slot.
   * @defaultValue 0
   */
  readonly delayPerTokenMs: number;
  /**
   * Tokens in every reply (deterministic words drawn from the prompt); `null` answers the
   * fixed sentence "Simulated reply from MODEL: the prompt had N characters.". A request's
   * `num_predict` / `max_tokens` caps it (`done_reason` `length`).
   * @defaultValue null
   */
  readonly replyTokens: number | null;
}

export const DEFAULT_SIM_OPTIONS: SimOptions = Object.freeze({
  dims: 768,
  models: Object.freeze({ 'nomic-embed-text': null, 'mxbai-embed-large': 1024, 'all-minilm': 384 }),
  rejectModels: Object.freeze([]),
  acceptAnyModel: false,
  delayPerCallMs: 0,
  delayPerDocMs: 0,
  serial: false,
  failureRate: 0,
  failureSeed: null,
  hang: false,
  legacyOnly: false,
  maxInputChars: 8192,
  cacheMb: 256,
  poison: null,
  badVector: 'none',
  poisonError: 'none',
  generateParallel: 1,
  delayPerTokenMs: 0,
  replyTokens: null,
});

/** A refused option value; `POST /sim/config` answers it with 400. */
export class SimConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimConfigError';
  }
}

/** Largest dimension accepted: far above any real model, low enough to stay cheap. */
const MAX_DIMS = 65_536;

function positiveInt(key: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new SimConfigError(`${key} must be an integer from 1 to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function nonNegativeInt(key: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new SimConfigError(`${key} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function milliseconds(key: string, value: unknown): number {
  // 2^31-1 ms is the longest delay a Node timer honours; more would fire at once.
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2_147_483_647) {
    throw new SimConfigError(`${key} must be a number of milliseconds >= 0, got ${JSON.stringify(value)}`);
  }
  return value;
}

function fraction(key: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= 1)) {
    throw new SimConfigError(`${key} must be a number from 0 to 1, got ${JSON.stringify(value)}`);
  }
  return value;
}

function flag(key: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new SimConfigError(`${key} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function seed(key: string, value: unknown): number | null {
  if (value === null) return null;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new SimConfigError(`${key} must be an integer or null, got ${JSON.stringify(value)}`);
  }
  return value;
}

function modelNames(key: string, value: unknown): readonly string[] {
  if (!Array.isArray(value) || !value.every((name) => typeof name === 'string' && name.trim() !== '')) {
    throw new SimConfigError(`${key} must be an array of model names`);
  }
  return Object.freeze([...(value as string[])]);
}

function models(key: string, value: unknown): SimModels {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SimConfigError(`${key} must be an object mapping model names to dimensions (or null)`);
  }
  const out: Record<string, number | null> = {};
  for (const [name, dims] of Object.entries(value)) {
    if (name.trim() === '') throw new SimConfigError(`${key} has an empty model name`);
    out[name] = dims === null ? null : positiveInt(`${key}["${name}"]`, dims, MAX_DIMS);
  }
  return Object.freeze(out);
}

function oneOf<T extends string>(choices: readonly T[]): (key: string, value: unknown) => T {
  return (key, value) => {
    if (typeof value !== 'string' || !(choices as readonly string[]).includes(value)) {
      throw new SimConfigError(`${key} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`);
    }
    return value as T;
  };
}

function textOrNull(key: string, value: unknown): string | null {
  if (value === null) return null;
  if (typeof value !== 'string' || value === '') throw new SimConfigError(`${key} must be a non-empty string or null, got ${JSON.stringify(value)}`);
  return value;
}

type Validators = { readonly [K in keyof SimOptions]: (key: string, value: unknown) => SimOptions[K] };

const VALIDATORS: Validators = {
  dims: (key, value) => positiveInt(key, value, MAX_DIMS),
  models,
  rejectModels: modelNames,
  acceptAnyModel: flag,
  delayPerCallMs: milliseconds,
  delayPerDocMs: milliseconds,
  serial: flag,
  failureRate: fraction,
  failureSeed: seed,
  hang: flag,
  legacyOnly: flag,
  maxInputChars: (key, value) => positiveInt(key, value),
  cacheMb: nonNegativeInt,
  poison: textOrNull,
  badVector: oneOf(SIM_BAD_VECTORS),
  poisonError: oneOf(SIM_POISON_ERRORS),
  generateParallel: (key, value) => positiveInt(key, value, 1024),
  delayPerTokenMs: milliseconds,
  replyTokens: (key, value) => (value === null ? null : positiveInt(key, value, 100_000)),
};

function isOptionKey(key: string): key is keyof SimOptions {
  return Object.hasOwn(VALIDATORS, key);
}

/**
 * `base` with the keys present in `patch` replaced, each validated. Unknown keys are
 * refused rather than ignored, so a typo in a test's configuration fails loudly.
 * `undefined` values are skipped, which lets callers spread optional settings.
 */
export function resolveSimOptions(patch: unknown, base: SimOptions = DEFAULT_SIM_OPTIONS): SimOptions {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    throw new SimConfigError('configuration must be a JSON object');
  }
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (!isOptionKey(key)) throw new SimConfigError(`unknown option "${key}"`);
    out[key] = VALIDATORS[key](key, value);
  }
  return Object.freeze(out) as unknown as SimOptions;
}
