/**
 * Configuration: flags win over environment, environment over defaults. Everything is
 * resolved and validated here, once, into a frozen `Config`; no other file holds a default.
 * A bad value throws `ConfigError` whose message is the one line the CLI prints.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { checkDistinct, KeyConfigError, parseKey, readKeysFile, type ApiKey } from './auth/keys.js';

export type BackendSpec =
  | { readonly kind: 'ollama'; readonly url: string; readonly parallel?: number }
  | { readonly kind: 'openai'; readonly url: string; readonly parallel?: number }
  | { readonly kind: 'embedded' };

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly backends: readonly BackendSpec[];
  /** Most chunks this process keeps in flight; 0 = it works none. */
  readonly workers: number;
  readonly embeddedThreads: number;
  readonly pendingTimeoutMs: number;
  readonly batchProcessing: boolean;
  /** The embedded store writes on a thread of its own (threadedStore.ts); off: on the event loop. */
  readonly storeThread: boolean;
  readonly jobTtlMs: number;
  readonly maxJobs: number;
  readonly maxBatchDocuments: number;
  /** Directory of the embedded store, or `:memory:`. */
  readonly dataDir: string;
  /** Distributed mode: the Redis holding jobs and the chunk queue (`--redis`); undefined = embedded. */
  readonly redisUrl: string | undefined;
  /** Prefix of every Redis key of this deployment, so several can share one Redis. */
  readonly redisPrefix: string;
  /**
   * How long a worker's claim on a chunk lasts without renewal (renewed every half of it);
   * a worker killed mid-chunk loses its chunks to the others within about this much time.
   */
  readonly chunkLockMs: number;
  /** Distributed mode: how often a gateway looks for stranded running jobs (SOLLOL_RECONCILE_INTERVAL seconds). */
  readonly reconcileIntervalMs: number;
  readonly autobatchIntervalMs: number;
  /** Documents per backend call. */
  readonly chunkSize: number;
  readonly bodyLimitBytes: number;
  readonly backendTimeoutMs: number;
  /** Whole-call timeout of one generation (`--generation-timeout`, default 600 s). */
  readonly generationTimeoutMs: number;
  readonly healthIntervalMs: number;
  readonly sweepIntervalMs: number;
  /** Bytes of vectors the content cache keeps; 0 = cache off. */
  readonly cacheMaxBytes: number;
  /** Retries of a chunk after a transient backend failure. */
  readonly chunkRetries: number;
  /** Identifies this gateway process (in `/api/version` and a response header). */
  readonly instanceId: string;
  readonly logLevel: string;
  /**
   * API keys (hashed). Empty: the gateway is open (every request acts as the anonymous owner).
   * @defaultValue none
   */
  readonly apiKeys: readonly ApiKey[];
  /** Requests per minute per key (per client address when no keys are configured); 0 = no limit. */
  readonly rateLimitPerMinute: number;
  /** Most pending + running jobs one owner may have; 0 = no cap beyond `maxJobs`. */
  readonly maxActiveJobsPerKey: number;
  /** Longest document (batch) or input (sync API), in characters. */
  readonly maxDocumentChars: number;
  /** New jobs are refused (507) while the embedded store uses more bytes than this; 0 = no cap. */
  readonly maxStoreBytes: number;
  /** Flags accepted for compatibility that do nothing; the CLI says so once. */
  readonly ignoredFlags: readonly string[];
  /** Longest time to receive a whole request (headers and body); a request still arriving is cut with 408. */
  readonly requestTimeoutMs: number;
  /** Longest time to receive a request's headers (at most `requestTimeoutMs`). */
  readonly headersTimeoutMs: number;
  /**
   * On SIGTERM/SIGINT: how long chunks in flight, sync calls and /api/chat streams may go on
   * before they are aborted and the connections closed (the scheduler's stop grace too).
   */
  readonly stopGraceMs: number;
  /** Hosts (`host` or `host:port`) a `callback_url` may name; empty = webhooks refused. */
  readonly webhookAllowHosts: readonly string[];
  /** Signs webhooks of owners without a keys-file `webhook_secret`. */
  readonly webhookSecret: string | undefined;
  /** How long a webhook delivery is retried (exponential backoff) before it is given up. */
  readonly webhookRetryForMs: number;
  /** The first retry's delay; each next one doubles it. */
  readonly webhookRetryBaseMs: number;
}

/** The defaults, in one place (docs/ARCHITECTURE.md, "Configuration"). */
export const DEFAULTS = {
  host: '127.0.0.1',
  port: 11434,
  workers: 'auto',
  embeddedThreads: 1,
  pendingTimeoutSeconds: 600,
  batchProcessing: true,
  storeThread: true,
  jobTtlSeconds: 3600,
  maxJobs: 1000,
  maxBatchDocuments: 10_000,
  dataDir: './sollol-data',
  redisPrefix: '{sollol}:',
  reconcileIntervalSeconds: 5,
  /** Short enough that a dead worker's chunks move on in seconds; long enough for a busy event loop to renew. */
  chunkLockSeconds: 8,
  autobatchIntervalSeconds: 60,
  chunkSize: 64,
  /** Admits 10,000 documents of 8 KiB with room for JSON escaping and metadata. */
  bodyLimitMb: 128,
  backendTimeoutSeconds: 120,
  generationTimeoutSeconds: 600,
  healthIntervalSeconds: 10,
  sweepIntervalSeconds: 30,
  chunkRetries: 2,
  cache: true,
  cacheMaxMb: 1024,
  logLevel: 'info',
  /** Off: one trusted client polling fast must not be throttled; set it when the gateway is shared. */
  rateLimitPerMinute: 0,
  maxActiveJobsPerKey: 100,
  maxDocumentChars: 100_000,
  maxStoreGb: 10,
  /** Cuts bodies that trickle; a 128 MB body needs about 17 Mbit/s to arrive in time (raise it for slower links). */
  requestTimeoutSeconds: 60,
  headersTimeoutSeconds: 20,
  shutdownGraceSeconds: 5,
  webhookRetryForSeconds: 3600,
  webhookRetryBaseSeconds: 1,
} as const;

/** Raw option values as they come from the command line (strings, booleans, lists). */
export interface RawOptions {
  host?: string;
  port?: string;
  backend?: string[];
  workers?: string;
  daskWorkers?: string;
  embeddedThreads?: string;
  pendingTimeout?: string;
  rayWorkers?: string;
  batchProcessing?: boolean;
  storeThread?: boolean;
  jobTtl?: string;
  maxJobs?: string;
  maxBatchDocuments?: string;
  dataDir?: string;
  redis?: string;
  redisPrefix?: string;
  chunkSize?: string;
  bodyLimitMb?: string;
  backendTimeout?: string;
  generationTimeout?: string;
  logLevel?: string;
  cache?: boolean;
  cacheMaxMb?: string;
  /** Plain keys or `sha256:<hex>` hashes (repeatable). */
  apiKey?: string[];
  /** Admin keys, same forms (repeatable). */
  adminKey?: string[];
  apiKeysFile?: string;
  rateLimit?: string;
  maxActiveJobsPerKey?: string;
  maxDocumentChars?: string;
  maxStoreGb?: string;
  requestTimeout?: string;
  shutdownGrace?: string;
  autobatchInterval?: string;
  /** Comma lists or repeated flags. */
  webhookAllowHosts?: string[];
  webhookSecret?: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export function resolveConfig(flags: RawOptions, env: Env = process.env): Config {
  const pick = (flag: string | undefined, ...envNames: string[]): string | undefined => {
    if (flag !== undefined) return flag;
    for (const name of envNames) {
      const value = env[name];
      if (value !== undefined && value !== '') return value;
    }
    return undefined;
  };
  const backends = parseBackends(flags.backend ?? splitList(env.SOLLOL_BACKENDS));
  const embeddedThreads = intOption('--embedded-threads', pick(flags.embeddedThreads, 'SOLLOL_EMBEDDED_THREADS'), DEFAULTS.embeddedThreads, 1, 64);
  const workersRaw = pick(flags.workers ?? flags.daskWorkers, 'SOLLOL_WORKERS', 'SOLLOL_DASK_WORKERS') ?? DEFAULTS.workers;
  const dataDir = pick(flags.dataDir, 'SOLLOL_DATA_DIR') ?? DEFAULTS.dataDir;
  const requestTimeoutMs = 1000 * numberOption('--request-timeout', pick(flags.requestTimeout, 'SOLLOL_REQUEST_TIMEOUT'), DEFAULTS.requestTimeoutSeconds, 0.01);
  const config: Config = {
    host: hostOption(pick(flags.host, 'SOLLOL_HOST') ?? DEFAULTS.host),
    port: intOption('--port', pick(flags.port, 'SOLLOL_PORT'), DEFAULTS.port, 0, 65535),
    backends,
    workers: workersOption(workersRaw, backends, embeddedThreads),
    embeddedThreads,
    pendingTimeoutMs: 1000 * numberOption('--pending-timeout', pick(flags.pendingTimeout, 'SOLLOL_PENDING_TIMEOUT'), DEFAULTS.pendingTimeoutSeconds, 0.01),
    batchProcessing: flags.batchProcessing ?? boolOption('SOLLOL_BATCH_PROCESSING', env.SOLLOL_BATCH_PROCESSING, DEFAULTS.batchProcessing),
    storeThread: flags.storeThread ?? boolOption('SOLLOL_STORE_THREAD', env.SOLLOL_STORE_THREAD, DEFAULTS.storeThread),
    jobTtlMs: 1000 * numberOption('--job-ttl', pick(flags.jobTtl, 'SOLLOL_JOB_TTL'), DEFAULTS.jobTtlSeconds, 0.01),
    maxJobs: intOption('--max-jobs', pick(flags.maxJobs, 'SOLLOL_MAX_JOBS'), DEFAULTS.maxJobs, 1, 1_000_000),
    maxBatchDocuments: intOption('--max-batch-documents', pick(flags.maxBatchDocuments, 'SOLLOL_MAX_BATCH_DOCUMENTS'), DEFAULTS.maxBatchDocuments, 1, 1_000_000),
    dataDir: dataDir === ':memory:' ? dataDir : path.resolve(dataDir),
    redisUrl: redisUrlOption(pick(flags.redis, 'SOLLOL_REDIS_URL')),
    redisPrefix: redisPrefixOption(pick(flags.redisPrefix, 'SOLLOL_REDIS_PREFIX') ?? DEFAULTS.redisPrefix),
    chunkLockMs: 1000 * numberOption('SOLLOL_CHUNK_LOCK', env.SOLLOL_CHUNK_LOCK, DEFAULTS.chunkLockSeconds, 0.5),
    reconcileIntervalMs: 1000 * numberOption('SOLLOL_RECONCILE_INTERVAL', env.SOLLOL_RECONCILE_INTERVAL, DEFAULTS.reconcileIntervalSeconds, 0.05),
    autobatchIntervalMs: 1000 * numberOption(flags.autobatchInterval !== undefined ? '--autobatch-interval' : 'SOLLOL_AUTOBATCH_INTERVAL', pick(flags.autobatchInterval, 'SOLLOL_AUTOBATCH_INTERVAL'), DEFAULTS.autobatchIntervalSeconds, 0.01),
    chunkSize: intOption('--chunk-size', pick(flags.chunkSize, 'SOLLOL_CHUNK_SIZE'), DEFAULTS.chunkSize, 1, 4096),
    bodyLimitBytes: Math.round(1024 * 1024 * numberOption('--body-limit-mb', pick(flags.bodyLimitMb, 'SOLLOL_BODY_LIMIT_MB'), DEFAULTS.bodyLimitMb, 0.001)),
    backendTimeoutMs: 1000 * numberOption('--backend-timeout', pick(flags.backendTimeout, 'SOLLOL_BACKEND_TIMEOUT'), DEFAULTS.backendTimeoutSeconds, 0.01),
    generationTimeoutMs: 1000 * numberOption('--generation-timeout', pick(flags.generationTimeout, 'SOLLOL_GENERATION_TIMEOUT'), DEFAULTS.generationTimeoutSeconds, 0.01),
    healthIntervalMs: 1000 * numberOption('SOLLOL_HEALTH_INTERVAL', env.SOLLOL_HEALTH_INTERVAL, DEFAULTS.healthIntervalSeconds, 0.01),
    sweepIntervalMs: 1000 * numberOption('SOLLOL_SWEEP_INTERVAL', env.SOLLOL_SWEEP_INTERVAL, DEFAULTS.sweepIntervalSeconds, 0.01),
    cacheMaxBytes: cacheBytes(flags, env),
    chunkRetries: intOption('SOLLOL_CHUNK_RETRIES', env.SOLLOL_CHUNK_RETRIES, DEFAULTS.chunkRetries, 0, 10),
    instanceId: randomUUID(),
    logLevel: logLevelOption(pick(flags.logLevel, 'SOLLOL_LOG_LEVEL') ?? DEFAULTS.logLevel),
    apiKeys: apiKeysOption(flags, env),
    rateLimitPerMinute: intOption('--rate-limit', pick(flags.rateLimit, 'SOLLOL_RATE_LIMIT'), DEFAULTS.rateLimitPerMinute, 0, 10_000_000),
    maxActiveJobsPerKey: intOption('--max-active-jobs-per-key', pick(flags.maxActiveJobsPerKey, 'SOLLOL_MAX_ACTIVE_JOBS_PER_KEY'), DEFAULTS.maxActiveJobsPerKey, 0, 1_000_000),
    maxDocumentChars: intOption('--max-document-chars', pick(flags.maxDocumentChars, 'SOLLOL_MAX_DOCUMENT_CHARS'), DEFAULTS.maxDocumentChars, 1, 100_000_000),
    maxStoreBytes: Math.round(1024 ** 3 * numberOption('--max-store-gb', pick(flags.maxStoreGb, 'SOLLOL_MAX_STORE_GB'), DEFAULTS.maxStoreGb, 0)),
    ignoredFlags: flags.rayWorkers !== undefined ? ['--ray-workers'] : [],
    requestTimeoutMs,
    headersTimeoutMs: Math.min(requestTimeoutMs, 1000 * numberOption('SOLLOL_HEADERS_TIMEOUT', env.SOLLOL_HEADERS_TIMEOUT, DEFAULTS.headersTimeoutSeconds, 0.01)),
    stopGraceMs: 1000 * numberOption('--shutdown-grace', pick(flags.shutdownGrace, 'SOLLOL_SHUTDOWN_GRACE'), DEFAULTS.shutdownGraceSeconds, 0),
    webhookAllowHosts: Object.freeze((flags.webhookAllowHosts ?? [env.SOLLOL_WEBHOOK_ALLOW_HOSTS ?? '']).flatMap(splitList).map((h) => h.toLowerCase())),
    webhookSecret: webhookSecretOption(pick(flags.webhookSecret, 'SOLLOL_WEBHOOK_SECRET')),
    webhookRetryForMs: 1000 * numberOption('SOLLOL_WEBHOOK_RETRY_FOR', env.SOLLOL_WEBHOOK_RETRY_FOR, DEFAULTS.webhookRetryForSeconds, 0),
    webhookRetryBaseMs: 1000 * numberOption('SOLLOL_WEBHOOK_RETRY_BASE', env.SOLLOL_WEBHOOK_RETRY_BASE, DEFAULTS.webhookRetryBaseSeconds, 0.01),
  };
  if (flags.rayWorkers !== undefined) intOption('--ray-workers', flags.rayWorkers, 0, 0, 1024);
  return Object.freeze(config);
}

/**
 * Keys from `--api-key` (else SOLLOL_API_KEYS), `--admin-key` (else SOLLOL_ADMIN_KEYS) and the
 * keys file (`--api-keys-file`, else SOLLOL_API_KEYS_FILE), all together. Messages never hold a key.
 */
function apiKeysOption(flags: RawOptions, env: Env): readonly ApiKey[] {
  const sources: [string[] | undefined, string, string, boolean][] = [
    [flags.apiKey, '--api-key', 'SOLLOL_API_KEYS', false],
    [flags.adminKey, '--admin-key', 'SOLLOL_ADMIN_KEYS', true],
  ];
  const file = flags.apiKeysFile ?? (env.SOLLOL_API_KEYS_FILE || undefined);
  try {
    const keys: ApiKey[] = [];
    for (const [flagValues, flag, envName, admin] of sources) {
      const values = flagValues ?? splitList(env[envName]);
      const label = flagValues ? flag : envName;
      values.forEach((value, i) => keys.push(parseKey(value, { admin, source: `${label} #${i + 1}` })));
    }
    if (file !== undefined) keys.push(...readKeysFile(file));
    checkDistinct(keys);
    return Object.freeze(keys);
  } catch (error) {
    if (error instanceof KeyConfigError) throw new ConfigError(error.message);
    throw error;
  }
}

function cacheBytes(flags: RawOptions, env: Env): number {
  const enabled = flags.cache ?? boolOption('SOLLOL_CACHE', env.SOLLOL_CACHE, DEFAULTS.cache);
  const raw = flags.cacheMaxMb ?? (env.SOLLOL_CACHE_MAX_MB || undefined);
  const mb = numberOption('--cache-max-mb', raw, DEFAULTS.cacheMaxMb, 0);
  return enabled ? Math.round(mb * 1024 * 1024) : 0;
}

function splitList(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** `http://h:11434` is an Ollama node, `openai+http://h:8080` an OpenAI-compatible server. */
export function parseBackends(values: readonly string[]): BackendSpec[] {
  if (values.length === 0) return [{ kind: 'embedded' }];
  const specs = values.map(parseBackend);
  const seen = new Set<string>();
  for (const spec of specs) {
    const key = spec.kind === 'embedded' ? 'embedded' : spec.url;
    if (seen.has(key)) throw new ConfigError(`--backend ${spec.kind === 'embedded' ? key : displayUrl(key)} is given twice`);
    seen.add(key);
  }
  return specs;
}

/** A backend URL safe to print: credentials (user:pass, API keys) removed. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/+$/, '');
  } catch {
    return '<invalid URL>';
  }
}

function parseBackend(value: string): BackendSpec {
  if (value === 'embedded') return { kind: 'embedded' };
  const openai = value.startsWith('openai+');
  const raw = openai ? value.slice('openai+'.length) : value;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`--backend ${JSON.stringify(displayUrl(raw) === '<invalid URL>' ? value.replace(/\/\/[^@/]*@/, '//***@') : value)} is not a URL; use http://host:11434, openai+http://host:8080 or embedded`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`--backend ${JSON.stringify(displayUrl(raw))} must use http:// or https://`);
  }
  const parallel = parallelParameter(url, raw);
  const normalised = url.toString().replace(/\/+$/, '');
  const kind = openai ? ('openai' as const) : ('ollama' as const);
  return parallel === undefined ? { kind, url: normalised } : { kind, url: normalised, parallel };
}

/**
 * `?parallel=N` on a backend URL: the node's generation slots (Ollama's OLLAMA_NUM_PARALLEL;
 * on an OpenAI-compatible server, N > 0 says it serves chat and completions). Taken off the URL.
 */
function parallelParameter(url: URL, raw: string): number | undefined {
  const given = url.searchParams.get('parallel');
  url.searchParams.delete('parallel');
  if (given === null) return undefined;
  const value = Number(given);
  if (!/^\d+$/.test(given) || !Number.isSafeInteger(value) || value > 1024) {
    throw new ConfigError(`--backend ${JSON.stringify(displayUrl(raw))}: parallel must be an integer from 0 to 1024, got ${JSON.stringify(given)}`);
  }
  return value;
}

function workersOption(raw: string, backends: readonly BackendSpec[], embeddedThreads: number): number {
  if (raw === 'auto') {
    // Two per remote node: one in service, the next waiting, so a node never idles between calls.
    return backends.reduce((sum, b) => sum + (b.kind === 'embedded' ? embeddedThreads : 2), 0);
  }
  return intOption('--workers', raw, 0, 0, 4096);
}

function intOption(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\s*-?\d+\s*$/.test(raw) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function numberOption(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min) {
    throw new ConfigError(`${name} must be a number of at least ${min}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function boolOption(name: string, raw: string | undefined, fallback: boolean): boolean {
  if (raw === undefined || raw === '') return fallback;
  const value = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function redisUrlOption(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`--redis must be a URL such as redis://127.0.0.1:6379, got ${JSON.stringify(raw.replace(/\/\/[^@/]*@/, '//***@'))}`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`--redis ${JSON.stringify(displayUrl(raw))} must use redis:// or rediss://`);
  }
  return raw;
}

function redisPrefixOption(raw: string): string {
  if (raw === '' || /[\s*?[\]]/.test(raw)) throw new ConfigError(`--redis-prefix must be non-empty, without spaces or glob characters, got ${JSON.stringify(raw)}`);
  return raw;
}

function webhookSecretOption(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (raw.length < 16) throw new ConfigError(`--webhook-secret must be at least 16 characters (got ${raw.length})`);
  return raw;
}

function hostOption(raw: string): string {
  if (raw.trim() === '' || /\s/.test(raw)) throw new ConfigError(`--host must be an address such as 127.0.0.1, got ${JSON.stringify(raw)}`);
  return raw;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
function logLevelOption(raw: string): string {
  if (!LOG_LEVELS.includes(raw)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw;
}
