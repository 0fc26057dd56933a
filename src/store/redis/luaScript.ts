/**
 * A Lua script of the Redis store, loaded with ioredis `defineCommand` (EVALSHA, falling back
 * to EVAL when Redis does not know it yet: first use, or after a restart flushed the script
 * cache). Every script gets the shared helpers of luaCommon.ts prepended.
 *
 * Each script declares its keys: KEYS[1] = `<prefix>stats` (ioredis, single node, Sentinel or
 * Cluster, routes the call by it), then every key of each job the call is about (the job ids
 * at the argument positions given to the constructor, 7 keys each, keys.ts). What a script
 * finds by itself (sweep and eviction victims, index and cache entries) is named from the
 * prefix; the default prefix `{sollol}:` carries a hash tag, so in a Redis Cluster every key
 * of a deployment is in KEYS[1]'s slot (README, "Running on Redis": a Cluster prefix must
 * contain a `{...}` hash tag).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { JOB_KEY_SUFFIXES } from './keys.js';
import { LUA_COMMON } from './luaCommon.js';

export type ScriptArg = string | number | Buffer;

type DefinedCommand = (args: ScriptArg[]) => Promise<unknown>;

export class LuaScript {
  readonly source: string;
  readonly sha: string;
  private readonly command: string;

  /** `jobArgs`: positions in the arguments (0-based; 0 is the prefix) of the job ids whose keys the call declares. */
  constructor(
    readonly name: string,
    body: string,
    private readonly jobArgs: readonly number[] = [],
  ) {
    this.source = `${LUA_COMMON}\n-- ${name}\n${body}`;
    this.sha = createHash('sha1').update(this.source).digest('hex');
    this.command = `sollol_${name}`;
  }

  private define(redis: Redis): Record<string, DefinedCommand> {
    const commands = redis as unknown as Record<string, DefinedCommand | undefined>;
    const numberOfKeys = 1 + this.jobArgs.length * JOB_KEY_SUFFIXES.length;
    if (commands[this.command] === undefined) redis.defineCommand(this.command, { numberOfKeys, lua: this.source });
    return redis as unknown as Record<string, DefinedCommand>;
  }

  // Arguments go as one array, never spread into a call: a job's documents can outnumber
  // what a JavaScript call accepts as arguments (ioredis flattens the array).

  /** Replies decoded as UTF-8 strings. `args[0]` is the key prefix. */
  run(redis: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    return this.define(redis)[this.command]!([...this.keys(args), ...args]);
  }

  /** Replies as Buffers: for raw vector bytes. */
  runBuffer(redis: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    return this.define(redis)[`${this.command}Buffer`]!([...this.keys(args), ...args]);
  }

  private keys(args: readonly ScriptArg[]): string[] {
    const prefix = String(args[0]);
    const keys = [`${prefix}stats`];
    for (const at of this.jobArgs) for (const suffix of JOB_KEY_SUFFIXES) keys.push(`${prefix}job:${String(args[at])}${suffix}`);
    return keys;
  }
}
