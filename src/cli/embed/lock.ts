/**
 * One `sollol embed` per output: OUTPUT.sollol-lock holds the pid of the run writing it. Two
 * runs on one output (the same command in two terminals) would append to the same files and
 * overwrite each other's state file; the second is refused while the first one lives. A lock
 * left by a run that ended without releasing it (kill -9, Ctrl-C) names a dead process and is
 * taken over.
 *
 * The lock appears with its pid already in it: the pid is written to a temporary file that is
 * then hard-linked to the lock's name (link fails when the name exists), so a reader never
 * sees an empty lock of a run that is starting. Two runs taking over one stale lock at the
 * same instant may both start: the one race this does not cover.
 */
import fs from 'node:fs';

export class OutputLockedError extends Error {}

export function lockPathOf(output: string): string {
  return `${output}.sollol-lock`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function holderOf(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Takes the output's lock, released when the process exits (every way `sollol embed` ends but a kill). */
export function lockOutput(output: string): void {
  const file = lockPathOf(output);
  const temp = `${file}.${process.pid}`;
  fs.writeFileSync(temp, `${process.pid}\n`);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        fs.linkSync(temp, file);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const holder = holderOf(file);
      if (attempt > 0 || (holder !== undefined && holder !== process.pid && alive(holder))) {
        throw new OutputLockedError(
          `another sollol embed${holder === undefined ? '' : ` (pid ${holder})`} is writing ${output}: wait for it to finish or stop it ` +
            `(if no such process runs, delete ${file})`,
        );
      }
      // Left by a run that is gone: taken over.
      fs.rmSync(file, { force: true });
    }
  } finally {
    fs.rmSync(temp, { force: true });
  }
  process.once('exit', () => {
    if (holderOf(file) === process.pid) fs.rmSync(file, { force: true });
  });
}
