/**
 * Redis faults as store faults (src/store/errors.ts): the Redis store never lets an ioredis
 * error out. Anything that says "Redis cannot answer now" (connection refused or closed, a
 * command timed out, retries used up, LOADING after a restart, a failover in progress, a
 * Cluster slot moving) becomes STORE_UNAVAILABLE, which the HTTP layer answers 503 with
 * Retry-After; Redis's maxmemory refusal (OOM) becomes STORE_FULL. Anything else (a reply
 * error from one of our scripts) is a bug of ours and stays as it is.
 */
import { StoreError } from '../errors.js';

/** First words of Redis error replies that mean "not now" rather than "never". */
const UNAVAILABLE_REPLIES = ['LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'NOREPLICAS', 'MOVED', 'ASK'];
const UNAVAILABLE_MESSAGES = [
  'Connection is closed',
  'Command timed out',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'connect ECONNREFUSED',
  'read ECONNRESET',
  'write EPIPE',
  'Failed to refresh slots cache',
  'None of startup nodes is available',
  'Cluster isn',
];

export function storeFault(error: unknown): StoreError | undefined {
  if (error instanceof StoreError) return error;
  if (!(error instanceof Error)) return undefined;
  const message = error.message;
  const firstWord = message.split(/\s/, 1)[0] ?? '';
  if (firstWord === 'OOM') return new StoreError('STORE_FULL', `Redis is out of memory (maxmemory): ${message}`, { cause: error });
  const code = (error as { code?: unknown }).code;
  if (
    error.name === 'MaxRetriesPerRequestError' ||
    UNAVAILABLE_REPLIES.includes(firstWord) ||
    UNAVAILABLE_MESSAGES.some((m) => message.includes(m)) ||
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    code === 'EPIPE'
  ) {
    return new StoreError('STORE_UNAVAILABLE', `The job store (Redis) cannot be reached now: ${message}`, { cause: error });
  }
  return undefined;
}

/** Runs a store operation, turning Redis faults into StoreErrors. */
export async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw storeFault(error) ?? error;
  }
}
