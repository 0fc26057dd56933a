/**
 * A Lua script run with EVALSHA, falling back to EVAL when Redis does not know it yet
 * (first use, or after a Redis restart flushed the script cache). Every script gets the
 * shared helpers of luaCommon.ts prepended.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LUA_COMMON } from './luaCommon.js';

export type ScriptArg = string | number | Buffer;

export class LuaScript {
  readonly source: string;
  readonly sha: string;

  constructor(
    readonly name: string,
    body: string,
  ) {
    this.source = `${LUA_COMMON}\n-- ${name}\n${body}`;
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }

  // Arguments go as one array, never spread into a call: a job's documents can outnumber
  // what a JavaScript call accepts as arguments.

  /** Replies decoded as UTF-8 strings. */
  run(redis: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    return withFallback(
      () => redis.call('EVALSHA', [this.sha, 0, ...args]),
      () => redis.call('EVAL', [this.source, 0, ...args]),
    );
  }

  /** Replies as Buffers: for raw vector bytes. */
  runBuffer(redis: Redis, args: readonly ScriptArg[]): Promise<unknown> {
    return withFallback(
      () => redis.callBuffer('EVALSHA', [this.sha, 0, ...args]),
      () => redis.callBuffer('EVAL', [this.source, 0, ...args]),
    );
  }
}

async function withFallback(first: () => Promise<unknown>, fallback: () => Promise<unknown>): Promise<unknown> {
  try {
    return await first();
  } catch (error) {
    // NOSCRIPT is Redis's error code (the first word of the reply), not free text.
    if (error instanceof Error && error.message.startsWith('NOSCRIPT')) return fallback();
    throw error;
  }
}
