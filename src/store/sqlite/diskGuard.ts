/**
 * Keeps the embedded store usable on a full disk (README, "API keys and limits": a full disk).
 *
 * SQLite needs free disk to delete anything in WAL mode (every change is first appended to
 * the WAL), so a disk filled to the last byte would refuse the very cancel or
 * `DELETE /api/batch/results/{id}` a user sends to make room. The guard keeps a reserve file
 * (`sollol.reserve`) beside the database. The first time a write fails with a full disk the
 * store enters low-space mode: the reserve is deleted (its bytes become the WAL's room for
 * deletes and cancels), and writes that only add data (new jobs, chunk results) are refused
 * with STORE_FULL without touching SQLite. The mode ends by itself once the disk has room
 * for the reserve again and some headroom: the reserve is written back and writes resume.
 */
import fs from 'node:fs';
import path from 'node:path';

export const RESERVE_FILE = 'sollol.reserve';

export interface DiskSpace {
  /** Bytes a non-root writer may still allocate on the file system of the data directory. */
  readonly freeBytes: number;
  readonly totalBytes: number;
}

export class DiskGuard {
  readonly reservePath: string;
  private low = false;
  private lowSince: number | undefined;

  constructor(
    private readonly dir: string,
    readonly reserveBytes: number,
  ) {
    this.reservePath = path.join(dir, RESERVE_FILE);
  }

  /** Whether writes that add data are refused until the disk has room again. */
  get lowSpace(): boolean {
    return this.low;
  }

  get since(): number | undefined {
    return this.lowSince;
  }

  space(): DiskSpace {
    const stats = fs.statfsSync(this.dir);
    return { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
  }

  reserveHeld(): boolean {
    try {
      return fs.statSync(this.reservePath).size >= this.reserveBytes;
    } catch {
      return false;
    }
  }

  /** Writes the reserve when it is missing and the disk has room for it twice over; returns whether it is held. */
  ensureReserve(): boolean {
    if (this.reserveBytes <= 0 || this.reserveHeld()) return true;
    if (this.space().freeBytes < 2 * this.reserveBytes) return false;
    try {
      const fd = fs.openSync(this.reservePath, 'w');
      try {
        const block = Buffer.alloc(Math.min(this.reserveBytes, 1 << 20));
        for (let written = 0; written < this.reserveBytes; written += block.length) fs.writeSync(fd, block, 0, Math.min(block.length, this.reserveBytes - written));
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      return true;
    } catch {
      fs.rmSync(this.reservePath, { force: true });
      return false;
    }
  }

  /** A write failed with a full disk: low-space mode, the reserve given back to the file system. Returns whether bytes were freed. */
  enterLowSpace(now = Date.now()): boolean {
    if (!this.low) {
      this.low = true;
      this.lowSince = now;
    }
    if (!fs.existsSync(this.reservePath)) return false;
    fs.rmSync(this.reservePath, { force: true });
    return true;
  }

  /**
   * Leaves low-space mode when the disk has room again: the reserve could be written back and
   * as much again is free for the WAL, or the database's own free pages (`reusableBytes`, left
   * by deleted jobs) make room inside the file while the disk keeps a reserve's worth.
   */
  recheck(reusableBytes: number): boolean {
    if (!this.low) return true;
    const free = this.space().freeBytes;
    const roomOnDisk = free >= 3 * this.reserveBytes;
    const roomInFile = free >= this.reserveBytes && reusableBytes >= 2 * this.reserveBytes;
    if (!roomOnDisk && !roomInFile) return false;
    if (roomOnDisk) this.ensureReserve();
    this.low = false;
    this.lowSince = undefined;
    return true;
  }
}
