/**
 * SQLite and file-system errors of the embedded store, classified into StoreError at the
 * store boundary (src/store/errors.ts; README, "Errors"): a full disk is STORE_FULL, anything
 * that makes the store unusable for now (I/O errors, a lock held beyond the busy timeout, a
 * read-only or vanished file) is STORE_UNAVAILABLE. Other errors (a constraint, a misuse)
 * are bugs of ours and are left as they are, for the HTTP layer's INTERNAL_ERROR.
 */
import { StoreError } from '../errors.js';

const FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT']);
const UNAVAILABLE_PREFIXES = ['SQLITE_IOERR', 'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_CORRUPT'];
const UNAVAILABLE_CODES = new Set(['SQLITE_PROTOCOL', 'SQLITE_NOTADB', 'SQLITE_PERM', 'SQLITE_NOMEM', 'SQLITE_NOLFS', 'EIO', 'EROFS', 'EACCES', 'EPERM']);

/** The StoreError for `error`, or undefined when it is not a fault of the store's medium. */
export function classifyStoreFault(error: unknown): StoreError | undefined {
  if (error instanceof StoreError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  const message = (error as Error).message;
  if (FULL_CODES.has(code) || code === 'SQLITE_IOERR_WRITE' && /no space|disk is full/i.test(message)) {
    return new StoreError('STORE_FULL', `The job store's disk is full (${message})`, { cause: error });
  }
  if (UNAVAILABLE_CODES.has(code) || UNAVAILABLE_PREFIXES.some((prefix) => code.startsWith(prefix))) {
    return new StoreError('STORE_UNAVAILABLE', `The job store cannot be used right now (${code}: ${message})`, { cause: error });
  }
  return undefined;
}

/** Runs `fn`, turning store faults into StoreError (others pass through unchanged). */
export function classified<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    throw classifyStoreFault(error) ?? error;
  }
}
