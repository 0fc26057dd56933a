/**
 * The data directory, made and checked before SQLite opens anything in it, so that a bad
 * --data-dir is one clear sentence at start-up. Directories are made one level at a time:
 * `fs.mkdirSync(dir, { recursive: true })` never returns for a path under /proc (measured on
 * Node 20: `--data-dir /proc/nope` hung the start-up silently).
 */
import fs from 'node:fs';
import path from 'node:path';

export class DataDirError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'DataDirError';
  }
}

const PROBE = '.sollol-write-test';

/** Makes `dir` (and missing parents) and proves it writable; throws DataDirError saying why not. */
export function prepareDataDir(dir: string): void {
  const absolute = path.resolve(dir);
  const missing: string[] = [];
  let existing = absolute;
  for (;;) {
    let stats: fs.Stats | undefined;
    try {
      stats = fs.statSync(existing);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw explain(absolute, error);
    }
    if (stats) {
      if (!stats.isDirectory()) {
        const what = existing === absolute ? 'is a file, not a directory' : `cannot be made: ${existing} is a file`;
        throw new DataDirError(`--data-dir ${absolute} ${what}; choose a writable directory with --data-dir`);
      }
      break;
    }
    missing.unshift(existing);
    const parent = path.dirname(existing);
    if (parent === existing) break;
    existing = parent;
  }
  try {
    for (const level of missing) fs.mkdirSync(level);
    const probe = path.join(absolute, PROBE);
    fs.writeFileSync(probe, 'sollol');
    fs.rmSync(probe, { force: true });
  } catch (error) {
    throw explain(absolute, error);
  }
}

function explain(dir: string, error: unknown): DataDirError {
  const code = (error as NodeJS.ErrnoException).code ?? 'error';
  const why: Record<string, string> = {
    ENOENT: 'cannot be created there',
    EACCES: 'is not writable by this user',
    EPERM: 'is not writable by this user',
    EROFS: 'is on a read-only file system',
    ENOSPC: 'is on a full disk',
    ENOTDIR: 'has a file where a directory should be',
  };
  return new DataDirError(`--data-dir ${dir} ${why[code] ?? `is not usable (${code})`}; choose a writable directory with --data-dir`, { cause: error });
}
