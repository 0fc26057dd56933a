/**
 * The flags every client command shares (`--gateway`, `--api-key`), bad usage exiting 2, and
 * the mapping of client errors to one line on stderr.
 */
import { Command, CommanderError } from 'commander';
import { SollolApiError, SollolConnectionError } from '../client/errors.js';
import { SollolClient } from '../client/client.js';

export const DEFAULT_GATEWAY = 'http://127.0.0.1:11434';

export interface GatewayFlags {
  gateway?: string;
  apiKey?: string;
  gatewayWait?: string;
}

/** Exit codes of the client commands. */
/** Exit codes; 130 is a shell's code for a process ended by Ctrl-C (128 + SIGINT). */
export const EXIT = { ok: 0, error: 1, usage: 2, itemsFailed: 3, interrupted: 130 } as const;

export function withGatewayFlags(command: Command): Command {
  return command
    .option('--gateway <url>', `the gateway (env SOLLOL_GATEWAY; default ${DEFAULT_GATEWAY})`)
    .option('--api-key <key>', 'API key for a gateway that requires one (env SOLLOL_API_KEY)')
    .option('--gateway-wait <seconds>', 'how long to keep retrying an unreachable or restarting gateway (default 300)')
    .exitOverride((error: CommanderError) => {
      // Help and version exit 0; every other commander refusal is bad usage.
      process.exit(error.exitCode === 0 ? 0 : EXIT.usage);
    });
}

export function usage(message: string): never {
  process.stderr.write(`sollol: error: ${message}\n`);
  process.exit(EXIT.usage);
}

export function clientFrom(flags: GatewayFlags): SollolClient {
  const baseUrl = flags.gateway ?? process.env.SOLLOL_GATEWAY ?? DEFAULT_GATEWAY;
  try {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') usage(`--gateway must be an http:// or https:// URL, got "${baseUrl}"`);
  } catch {
    usage(`--gateway is not a URL: "${baseUrl}"`);
  }
  const apiKey = flags.apiKey ?? process.env.SOLLOL_API_KEY;
  return new SollolClient({ baseUrl, ...(apiKey ? { apiKey } : {}) });
}

export function gatewayWaitMs(flags: GatewayFlags): number {
  if (flags.gatewayWait === undefined) return 300_000;
  const seconds = Number(flags.gatewayWait);
  if (!Number.isFinite(seconds) || seconds < 0) usage(`--gateway-wait must be a number of seconds, got "${flags.gatewayWait}"`);
  return seconds * 1000;
}

export function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) usage(`${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

/** One line for an error that stopped a command; exits 1. */
export function stopped(error: unknown): never {
  let message: string;
  if (error instanceof SollolApiError) message = `${error.detail()} (${error.code}, HTTP ${error.status})`;
  else if (error instanceof SollolConnectionError) message = error.message;
  else message = (error as Error)?.message ?? String(error);
  process.stderr.write(`sollol: error: ${message}\n`);
  process.exit(EXIT.error);
}
