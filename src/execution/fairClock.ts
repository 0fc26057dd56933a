/**
 * The fair-share clock of the chunk queue, in our own Redis key `<prefix>fair` (HASH):
 *   clock   the virtual start of the latest chunk a worker took (only ever grows)
 *   epoch   what is subtracted from a virtual start to get BullMQ's priority
 * Chunk k of a job enqueued when the clock reads c has virtual start c + k (start-time fair
 * queuing, bullQueue.ts). Virtual starts grow without bound under a backlog that never
 * drains; BullMQ priorities stop at 2^21 - 1. So priorities are `virtual - epoch`, and once they
 * would pass half the limit, the enqueue that sees it moves the epoch up to the clock and
 * re-prioritizes every waiting chunk from the virtual start it carries (`rebase`): order is
 * kept, nothing clamps into FIFO. An enqueue racing a rebase checks the epoch again after
 * adding its chunks and fixes its own priorities, so every chunk ends up on the new epoch.
 * Both scripts declare their one key (Redis Cluster routes them by it).
 */
import type { Redis } from 'ioredis';

/** BullMQ's highest priority number. */
export const PRIORITY_LIMIT = 2 ** 21 - 1;
/** Rebase once priorities would pass this. */
const REBASE_AT = 2 ** 20;

/** KEYS[1] fair; ARGV chunks, rebaseAt. Returns base, epoch, rebased (0/1). */
const PLAN = `
local clock = tonumber(redis.call('HGET', KEYS[1], 'clock') or '0')
local epoch = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '0')
local base = math.max(clock, 1)
local rebased = 0
if base + tonumber(ARGV[1]) - epoch > tonumber(ARGV[2]) then
  epoch = base - 1
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  rebased = 1
end
return {tostring(base), tostring(epoch), rebased}`;

/** KEYS[1] fair; ARGV virtual start of a chunk taken now. */
const ADVANCE = `
local v = tonumber(ARGV[1])
if v > tonumber(redis.call('HGET', KEYS[1], 'clock') or '0') then redis.call('HSET', KEYS[1], 'clock', ARGV[1]) end
return 1`;

interface FairCommands {
  sollolFairPlan(key: string, chunks: number, rebaseAt: number): Promise<[string, string, number]>;
  sollolFairAdvance(key: string, virtual: number): Promise<number>;
}

export interface FairPlan {
  readonly base: number;
  readonly epoch: number;
  /** This enqueue moved the epoch: it must re-prioritize the waiting chunks. */
  readonly rebased: boolean;
}

export class FairClock {
  readonly key: string;
  private readonly redis: Redis & FairCommands;

  constructor(redis: Redis, prefix: string) {
    this.key = `${prefix}fair`;
    const commands = redis as Redis & Partial<FairCommands>;
    if (!commands.sollolFairPlan) redis.defineCommand('sollolFairPlan', { numberOfKeys: 1, lua: PLAN });
    if (!commands.sollolFairAdvance) redis.defineCommand('sollolFairAdvance', { numberOfKeys: 1, lua: ADVANCE });
    this.redis = redis as Redis & FairCommands;
  }

  async plan(chunks: number, rebaseAt = REBASE_AT): Promise<FairPlan> {
    const [base, epoch, rebased] = await this.redis.sollolFairPlan(this.key, chunks, rebaseAt);
    return { base: Number(base), epoch: Number(epoch), rebased: Number(rebased) === 1 };
  }

  async epoch(): Promise<number> {
    return Number((await this.redis.hget(this.key, 'epoch')) ?? 0);
  }

  /** A worker took the chunk with this virtual start. */
  async advance(virtual: number): Promise<void> {
    await this.redis.sollolFairAdvance(this.key, virtual);
  }
}

/** BullMQ's priority for a virtual start under `epoch`: from 1 (first) to the limit. */
export function priorityOf(virtual: number, epoch: number): number {
  return Math.min(PRIORITY_LIMIT, Math.max(1, virtual - epoch));
}
