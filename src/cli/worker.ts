/** `sollol worker`: takes chunks from the distributed mode's queue and embeds them on its own backends. */
import { configOrExit, describeBackends, stopOnSignals } from './lifecycle.js';
import { Command, Option } from 'commander';
import { DEFAULTS, type RawOptions } from '../config.js';
import { safeUrl } from '../execution/redisClient.js';
import { createLogger } from '../logger.js';
import { VERSION } from '../version.js';
import { startWorker } from '../worker.js';
import { fail } from './fail.js';
import { applyHeapPolicy } from './heapPolicy.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function workerCommand(): Command {
  return new Command('worker')
    .description('Work chunks of batch jobs from a Redis shared with `sollol up --redis` gateways')
    .option('--redis <url>', 'the Redis the gateways use, e.g. redis://host:6379 (env SOLLOL_REDIS_URL; required)')
    .option('--redis-prefix <prefix>', `prefix of every Redis key; the gateways' prefix (env SOLLOL_REDIS_PREFIX; default ${DEFAULTS.redisPrefix})`)
    .option('--port <port>', 'serve /api/health and /metrics for this worker on 127.0.0.1:<port> (--host to change; 0 = any free port); default: no HTTP server')
    .option('--host <address>', 'address of the --port server (env SOLLOL_HOST; default 127.0.0.1)')
    .option('--backend <url>', 'embedding backend, repeatable: http://host:11434 (Ollama), openai+http://host:8080 or embedded (env SOLLOL_BACKENDS; default embedded)', collect)
    .option('--workers <n>', 'most chunks in flight: auto (2 per remote node + embedded threads) or a number (env SOLLOL_WORKERS)')
    .option('--embedded-threads <n>', `worker threads for the embedded model (env SOLLOL_EMBEDDED_THREADS; default ${DEFAULTS.embeddedThreads})`)
    .option('--backend-timeout <seconds>', `timeout of one backend call (env SOLLOL_BACKEND_TIMEOUT; default ${DEFAULTS.backendTimeoutSeconds})`)
    .option('--generation-timeout <seconds>', `timeout of one generation call (env SOLLOL_GENERATION_TIMEOUT; default ${DEFAULTS.generationTimeoutSeconds})`)
    .option('--cache', 'write vectors to the shared content cache (default; env SOLLOL_CACHE)')
    .option('--no-cache', 'do not write the content cache')
    .option('--cache-max-mb <mb>', `bytes of vectors the shared cache keeps (env SOLLOL_CACHE_MAX_MB; default ${DEFAULTS.cacheMaxMb})`)
    .addOption(new Option('--log-level <level>', 'log level (env SOLLOL_LOG_LEVEL)').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .action(async (options: RawOptions) => {
      await runWorker(options);
    });
}

async function runWorker(options: RawOptions): Promise<void> {
  applyHeapPolicy();
  const config = configOrExit(options);
  const redisUrl = config.redisUrl;
  if (redisUrl === undefined) fail('sollol worker needs --redis redis://host:6379 (or SOLLOL_REDIS_URL): the Redis its gateways use');
  if (config.workers === 0) fail('--workers 0: a worker that works no chunks has nothing to do');
  const logger = createLogger(config.logLevel);
  const http = options.port !== undefined ? { host: config.host, port: config.port } : undefined;
  const worker = await startWorker({ ...config, redisUrl }, logger, http).catch((error: unknown) =>
    fail(`could not start: ${error instanceof Error ? error.message : String(error)}`),
  );
  const backends = describeBackends(config);
  logger.info(`sollol ${VERSION} worker ${worker.instanceId} ready | redis: ${safeUrl(redisUrl)} (prefix ${config.redisPrefix}) | backends: ${backends} | workers: ${config.workers}${worker.url ? ` | health and metrics on ${worker.url}` : ''}`);
  stopOnSignals(worker, logger);
}
