/** `sollol up`: starts the gateway (docs/ARCHITECTURE.md, "Configuration"). */
import { configOrExit, describeBackends, stopOnSignals } from './lifecycle.js';
import { Command, Option } from 'commander';
import { DEFAULTS, type Config, type RawOptions } from '../config.js';
import { accessNotice } from '../auth/notice.js';
import { UnsupportedBackendError } from '../backends/factory.js';
import { safeUrl } from '../execution/redisClient.js';
import { SelfReferenceError, startGateway } from '../gateway.js';
import { DataDirError } from '../store/sqlite/dataDir.js';
import { createLogger } from '../logger.js';
import { VERSION } from '../version.js';
import { fail } from './fail.js';
import { applyHeapPolicy } from './heapPolicy.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function upCommand(): Command {
  return new Command('up')
    .description('Start the gateway: the Batch Processing API and the Ollama-compatible API')
    .option('--host <address>', `listen address (env SOLLOL_HOST; default ${DEFAULTS.host})`)
    .option('--port <port>', `listen port (env SOLLOL_PORT; default ${DEFAULTS.port})`)
    .option('--backend <url>', 'embedding backend, repeatable: http://host:11434 (Ollama) or embedded (env SOLLOL_BACKENDS, comma list; default embedded)', collect)
    .option('--workers <n>', 'most chunks in flight: auto (2 per remote node + embedded threads) or a number; 0 = none (env SOLLOL_WORKERS)')
    .option('--dask-workers <n>', 'alias of --workers, for SOLLOL compatibility (env SOLLOL_DASK_WORKERS)')
    .option('--embedded-threads <n>', `worker threads for the embedded model (env SOLLOL_EMBEDDED_THREADS; default ${DEFAULTS.embeddedThreads})`)
    .option('--pending-timeout <seconds>', `how long a job may wait for any backend (default ${DEFAULTS.pendingTimeoutSeconds})`)
    .option('--ray-workers <n>', 'accepted for SOLLOL compatibility; has no effect')
    .option('--batch-processing', 'enable the Batch API (default; env SOLLOL_BATCH_PROCESSING)')
    .option('--no-batch-processing', 'disable the Batch API (/api/batch/* answers 503)')
    .option('--store-thread', 'the embedded store writes on a thread of its own (default; env SOLLOL_STORE_THREAD)')
    .option('--no-store-thread', 'the embedded store writes on the event loop')
    .option('--job-ttl <seconds>', `how long finished jobs are kept (env SOLLOL_JOB_TTL; default ${DEFAULTS.jobTtlSeconds})`)
    .option('--max-jobs <n>', `most jobs stored (env SOLLOL_MAX_JOBS; default ${DEFAULTS.maxJobs})`)
    .option('--max-batch-documents <n>', `most documents per batch (env SOLLOL_MAX_BATCH_DOCUMENTS; default ${DEFAULTS.maxBatchDocuments})`)
    .option('--data-dir <dir>', `embedded store directory, or :memory: (env SOLLOL_DATA_DIR; default ${DEFAULTS.dataDir})`)
    .option('--chunk-size <n>', `documents per backend call (env SOLLOL_CHUNK_SIZE; default ${DEFAULTS.chunkSize})`)
    .option('--body-limit-mb <mb>', `largest request body (env SOLLOL_BODY_LIMIT_MB; default ${DEFAULTS.bodyLimitMb})`)
    .option('--backend-timeout <seconds>', `timeout of one backend call (env SOLLOL_BACKEND_TIMEOUT; default ${DEFAULTS.backendTimeoutSeconds})`)
    .option('--generation-timeout <seconds>', `timeout of one generation call (env SOLLOL_GENERATION_TIMEOUT; default ${DEFAULTS.generationTimeoutSeconds})`)
    .option('--cache', 'content cache: identical (model, text, options) embedded once (default; env SOLLOL_CACHE)')
    .option('--no-cache', 'turn the content cache off')
    .option('--cache-max-mb <mb>', `bytes of vectors the cache keeps (env SOLLOL_CACHE_MAX_MB; default ${DEFAULTS.cacheMaxMb})`)
    .option('--api-key <key>', 'require this API key (repeatable; plain, or sha256:<hex> from `sollol hash-key`) (env SOLLOL_API_KEYS, comma list)', collect)
    .option('--admin-key <key>', 'an admin API key: sees every job and the global stats (repeatable) (env SOLLOL_ADMIN_KEYS)', collect)
    .option('--api-keys-file <file>', 'API keys, one per line: <key | sha256:<hex>> [name=<name>] [admin] (env SOLLOL_API_KEYS_FILE)')
    .option('--rate-limit <n>', `requests per minute per key; 0 = no limit (env SOLLOL_RATE_LIMIT; default ${DEFAULTS.rateLimitPerMinute})`)
    .option('--max-active-jobs-per-key <n>', `most pending + running jobs per key; 0 = no cap (env SOLLOL_MAX_ACTIVE_JOBS_PER_KEY; default ${DEFAULTS.maxActiveJobsPerKey})`)
    .option('--max-document-chars <n>', `longest document or input, in characters (env SOLLOL_MAX_DOCUMENT_CHARS; default ${DEFAULTS.maxDocumentChars})`)
    .option('--request-timeout <seconds>', `longest time to receive a whole request, body included; slower ones are cut with 408 (env SOLLOL_REQUEST_TIMEOUT; default ${DEFAULTS.requestTimeoutSeconds})`)
    .option('--shutdown-grace <seconds>', `on SIGTERM: how long work in flight may finish before it is aborted (env SOLLOL_SHUTDOWN_GRACE; default ${DEFAULTS.shutdownGraceSeconds})`)
    .option('--max-store-gb <gb>', `new jobs are refused while the store is larger; 0 = no cap (env SOLLOL_MAX_STORE_GB; default ${DEFAULTS.maxStoreGb})`)
    .addOption(new Option('--log-level <level>', 'log level (env SOLLOL_LOG_LEVEL)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .option('--autobatch-interval <seconds>', `how often queued autobatch documents become jobs (env SOLLOL_AUTOBATCH_INTERVAL; default ${DEFAULTS.autobatchIntervalSeconds})`)
    .option('--webhook-allow-hosts <hosts>', 'hosts (host or host:port, comma list, repeatable) a callback_url may name; default none: webhooks refused (env SOLLOL_WEBHOOK_ALLOW_HOSTS)', collect)
    .option('--webhook-secret <secret>', 'HMAC-SHA256 secret signing webhooks of keys without their own webhook_secret (env SOLLOL_WEBHOOK_SECRET)')
    .option('--redis <url>', 'distributed mode: jobs in this Redis, chunks on its BullMQ queue for `sollol worker`s (env SOLLOL_REDIS_URL)')
    .option('--redis-prefix <prefix>', `prefix of every Redis key, so deployments can share one Redis (env SOLLOL_REDIS_PREFIX; default ${DEFAULTS.redisPrefix})`)
    .action(async (options: RawOptions) => {
      await runUp(options);
    });
}

async function runUp(options: RawOptions): Promise<void> {
  applyHeapPolicy();
  const config = configOrExit(options);
  const logger = createLogger(config.logLevel);
  for (const flag of config.ignoredFlags) logger.warn(`${flag} is accepted for compatibility and has no effect`);
  const gateway = await startGateway(config, logger).catch((error: unknown) => fail(startupMessage(error, config)));
  const backends = describeBackends(config);
  logger.info(`sollol ${VERSION} listening on ${gateway.url} | backends: ${backends} | workers: ${config.workers} | store: ${storeName(config)}`);
  const notice = accessNotice(config, gateway.url);
  logger[notice.level](notice.message);
  if (!config.batchProcessing) logger.warn('batch processing is disabled (--no-batch-processing): /api/batch/* answers 503');
  // The grace, then a few seconds to close the backends and the store.
  stopOnSignals(gateway, logger, config.stopGraceMs + 15_000);
}

function storeName(config: Config): string {
  return config.redisUrl === undefined ? config.dataDir : `${safeUrl(config.redisUrl)} (prefix ${config.redisPrefix})`;
}

function startupMessage(error: unknown, config: Config): string {
  const err = error as { code?: string; message?: string };
  if (err.code === 'EADDRINUSE') {
    return `${config.host}:${config.port} is already in use (Ollama listens on 11434 too); choose another port with --port`;
  }
  if (err.code === 'EADDRNOTAVAIL') return `cannot listen on ${config.host}: no such local address; check --host`;
  if (error instanceof SelfReferenceError || error instanceof UnsupportedBackendError || error instanceof DataDirError) return error.message;
  if (err.code === 'SQLITE_CANTOPEN') return `cannot open the store in ${config.dataDir}; check --data-dir`;
  return `could not start: ${err.message ?? String(error)}`;
}
