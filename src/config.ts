/**
 * Configuration: flags win over environment, environment over defaults. Everything is
 * resolved and validated here, once, into a frozen `Config`; no other file holds a default.
 * A bad value throws `ConfigError` whose message is the one line the CLI prints.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';

export type BackendSpec =
  | { readonly kind: 'ollama'; readonly url: string }
  | { readonly kind: 'openai'; readonly url: string }
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
  readonly jobTtlMs: number;
  readonly maxJobs: number;
  readonly maxBatchDocuments: number;
  /** Directory of the embedded store, or `:memory:`. */
  readonly dataDir: string;
  readonly redisUrl: string | undefined;
  readonly autobatchIntervalMs: number;
  /** Documents per backend call. */
  readonly chunkSize: number;
  readonly bodyLimitBytes: number;
  readonly backendTimeoutMs: number;
  readonly healthIntervalMs: number;
  readonly sweepIntervalMs: number;
  /** Bytes of vectors the content cache keeps; 0 = cache off. */
  readonly cacheMaxBytes: number;
  /** Retries of a chunk after a transient backend failure. */
  readonly chunkRetries: number;
  /** Identifies this gateway process (in `/api/version` and a response header). */
  readonly instanceId: string;
  readonly logLevel: string;
  /** Flags accepted for compatibility that do nothing; the CLI says so once. */
  readonly ignoredFlags: readonly string[];
}

/** The defaults, in one place (DESIGN.md section 3). */
export const DEFAULTS = {
  host: '127.0.0.1',
  port: 11434,
  workers: 'auto',
  embeddedThreads: 1,
  pendingTimeoutSeconds: 600,
  batchProcessing: true,
  jobTtlSeconds: 3600,
  maxJobs: 1000,
  maxBatchDocuments: 10_000,
  dataDir: './sollol-data',
  autobatchIntervalSeconds: 60,
  chunkSize: 64,
  /** Admits 10,000 documents of 8 KiB with room for JSON escaping and metadata. */
  bodyLimitMb: 128,
  backendTimeoutSeconds: 120,
  healthIntervalSeconds: 10,
  sweepIntervalSeconds: 30,
  chunkRetries: 2,
  cache: true,
  cacheMaxMb: 1024,
  logLevel: 'info',
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
  jobTtl?: string;
  maxJobs?: string;
  maxBatchDocuments?: string;
  dataDir?: string;
  redis?: string;
  chunkSize?: string;
  bodyLimitMb?: string;
  backendTimeout?: string;
  logLevel?: string;
  cache?: boolean;
  cacheMaxMb?: string;
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
  const config: Config = {
    host: hostOption(pick(flags.host, 'SOLLOL_HOST') ?? DEFAULTS.host),
    port: intOption('--port', pick(flags.port, 'SOLLOL_PORT'), DEFAULTS.port, 0, 65535),
    backends,
    workers: workersOption(workersRaw, backends, embeddedThreads),
    embeddedThreads,
    pendingTimeoutMs: 1000 * numberOption('--pending-timeout', pick(flags.pendingTimeout, 'SOLLOL_PENDING_TIMEOUT'), DEFAULTS.pendingTimeoutSeconds, 0.01),
    batchProcessing: flags.batchProcessing ?? boolOption('SOLLOL_BATCH_PROCESSING', env.SOLLOL_BATCH_PROCESSING, DEFAULTS.batchProcessing),
    jobTtlMs: 1000 * numberOption('--job-ttl', pick(flags.jobTtl, 'SOLLOL_JOB_TTL'), DEFAULTS.jobTtlSeconds, 0.01),
    maxJobs: intOption('--max-jobs', pick(flags.maxJobs, 'SOLLOL_MAX_JOBS'), DEFAULTS.maxJobs, 1, 1_000_000),
    maxBatchDocuments: intOption('--max-batch-documents', pick(flags.maxBatchDocuments, 'SOLLOL_MAX_BATCH_DOCUMENTS'), DEFAULTS.maxBatchDocuments, 1, 1_000_000),
    dataDir: dataDir === ':memory:' ? dataDir : path.resolve(dataDir),
    redisUrl: pick(flags.redis, 'SOLLOL_REDIS_URL'),
    autobatchIntervalMs: 1000 * numberOption('SOLLOL_AUTOBATCH_INTERVAL', env.SOLLOL_AUTOBATCH_INTERVAL, DEFAULTS.autobatchIntervalSeconds, 0.01),
    chunkSize: intOption('--chunk-size', pick(flags.chunkSize, 'SOLLOL_CHUNK_SIZE'), DEFAULTS.chunkSize, 1, 4096),
    bodyLimitBytes: Math.round(1024 * 1024 * numberOption('--body-limit-mb', pick(flags.bodyLimitMb, 'SOLLOL_BODY_LIMIT_MB'), DEFAULTS.bodyLimitMb, 0.001)),
    backendTimeoutMs: 1000 * numberOption('--backend-timeout', pick(flags.backendTimeout, 'SOLLOL_BACKEND_TIMEOUT'), DEFAULTS.backendTimeoutSeconds, 0.01),
    healthIntervalMs: 1000 * numberOption('SOLLOL_HEALTH_INTERVAL', env.SOLLOL_HEALTH_INTERVAL, DEFAULTS.healthIntervalSeconds, 0.01),
    sweepIntervalMs: 1000 * numberOption('SOLLOL_SWEEP_INTERVAL', env.SOLLOL_SWEEP_INTERVAL, DEFAULTS.sweepIntervalSeconds, 0.01),
    cacheMaxBytes: cacheBytes(flags, env),
    chunkRetries: intOption('SOLLOL_CHUNK_RETRIES', env.SOLLOL_CHUNK_RETRIES, DEFAULTS.chunkRetries, 0, 10),
    instanceId: randomUUID(),
    logLevel: logLevelOption(pick(flags.logLevel, 'SOLLOL_LOG_LEVEL') ?? DEFAULTS.logLevel),
    ignoredFlags: flags.rayWorkers !== undefined ? ['--ray-workers'] : [],
  };
  if (flags.rayWorkers !== undefined) intOption('--ray-workers', flags.rayWorkers, 0, 0, 1024);
  return Object.freeze(config);
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
  const normalised = url.toString().replace(/\/+$/, '');
  return openai ? { kind: 'openai', url: normalised } : { kind: 'ollama', url: normalised };
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

function hostOption(raw: string): string {
  if (raw.trim() === '' || /\s/.test(raw)) throw new ConfigError(`--host must be an address such as 127.0.0.1, got ${JSON.stringify(raw)}`);
  return raw;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
function logLevelOption(raw: string): string {
  if (!LOG_LEVELS.includes(raw)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw;
}
