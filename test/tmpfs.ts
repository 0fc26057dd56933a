/** A small tmpfs a test mounts itself, for full-disk cases (CI runs as root; elsewhere skipped). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MiB = 1024 * 1024;

/**
 * Mounts a tmpfs of `sizeMb` on a fresh directory, or says why it cannot (not root). `unmount`
 * is for the caller to register once the gateway's own t.after hook is (hooks run in order).
 */
export function mountTmpfs(sizeMb: number): { dir: string; unmount: () => void; resize: (sizeMb: number) => void } | { skip: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sollol-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    fs.rmdirSync(dir);
    const why = String((error as { stderr?: Buffer }).stderr ?? error).trim();
    if (process.env.CI === 'true') throw new Error(`cannot mount a tmpfs on CI (runs as root and must): ${why}`);
    return { skip: `mounting a tmpfs is not permitted here (needs root): ${why}` };
  }
  const stats = fs.statfsSync(dir);
  assert.ok(stats.blocks * stats.bsize <= sizeMb * MiB, 'the data directory is the small tmpfs');
  return {
    dir,
    resize: (size: number) => {
      execFileSync('mount', ['-o', `remount,size=${size}m`, dir], { stdio: 'pipe' });
    },
    unmount: () => {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      fs.rmdirSync(dir);
    },
  };
}

