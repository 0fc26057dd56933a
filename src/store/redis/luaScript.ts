/**
 * A Lua script of the Redis store, loaded with ioredis `defineCommand` (EVALSHA, falling back
 * to EVAL when Redis does not know it yet: first use, or after a restart flushed the script
 * cache). Every script gets the shared helpers of luaCommon.ts prepended.
 *
 * Each script declares one key, KEYS[1] = `<prefix>stats`, and ioredis (single node, Sentinel
 * or Cluster) routes the call by it. The other keys a script touches are named from that
 * key's prefix; the default prefix `{sollol}:` carries a hash tag, so in a Redis Cluster every
 * key of a deployment is in KEYS[1]'s slot (README, "Running on Redis": a Cluster prefix must
 * contain a `{...}` hash tag).
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LUA_COMMON } from './luaCommon.js';

export type ScriptArg = string | number | Buffer;

type DefinedCommand = (args: ScriptArg[]) => Promise<unknown>;

export class LuaScript {
  readonly source: string;
  readonly sha: string;
  private readonly command: string;

  constructor(
    readonly name: string,
    body: string,
  ) {
    this.source = `${LUA_COMMON}\n-- ${name}\n${body}`;
    this.sha = createHash('sha1').update(this.source).digest('hex');
    this.command = `sollol_${name}`;
  }

  private define(redis: Redis): Record<string, DefinedCommand> {
    const commands = redis as unknown as Record<string, DefinedCommand | undefined>;
    if (commands[this.command] === undefined) redis.defineCommand(this.command, { numberOfKeys: 1, lua: this.source });
    return redis as unknown as Record<string, DefinedCommand>;
  }

  // Arguments go as one array, never spread into a call: a job's documents can outnumber
  // what a JavaScript call accepts as arguments (ioredis flattens the array).

  /** Replies decoded as UTF-8 strings. `args[0]` is the key prefix. */
  run(redis: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    return this.define(redis)[this.command]!([routingKey(args), ...args]);
  }

  /** Replies as Buffers: for raw vector bytes. */
  runBuffer(redis: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    return this.define(redis)[`${this.command}Buffer`]!([routingKey(args), ...args]);
  }
}

function routingKey(args: readonly ScriptArg[]): string {
  return `${String(args[0])}stats`;
}
