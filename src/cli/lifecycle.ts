/** What `sollol up` and `sollol worker` share: how backends are named in logs, and how a signal stops the process. */
import type { Logger as PinoLogger } from 'pino';
import { ConfigError, displayUrl, resolveConfig, type Config, type RawOptions } from '../config.js';
import { fail } from './fail.js';

export function describeBackends(config: Config): string {
  return config.backends.map((b) => (b.kind === 'embedded' ? 'embedded (model use-lite)' : displayUrl(b.url))).join(', ');
}

/**
 * SIGINT and SIGTERM drain and exit 0 (1 if stopping failed). `on`, not `once`: a second
 * signal while stopping must find this handler (which ignores it), not Node's default, which
 * would kill the process before the drain finishes.
 */
export function stopOnSignals(stoppable: { stop(): Promise<void> }, logger: PinoLogger, boundMs?: number): void {
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info(`${signal} received: finishing chunks in flight, then stopping`);
    // The last resort should stopping itself hang (a bug): exit 1 with a line saying so.
    if (boundMs !== undefined) {
      setTimeout(() => {
        logger.error(`stopping took more than ${Math.round(boundMs / 1000)} s; exiting without waiting further`);
        process.exit(1);
      }, boundMs).unref();
    }
    void stoppable.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The resolved configuration, or one clear line on stderr and a non-zero exit. */
export function configOrExit(options: RawOptions): Config {
  try {
    return resolveConfig(options, process.env);
  } catch (error) {
    if (error instanceof ConfigError) fail(error.message);
    throw error;
  }
}
