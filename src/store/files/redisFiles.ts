/**
 * FileStore on Redis, under the deployment's prefix:
 *   file:<id>              HASH   owner, bytes, createdAt, filename, purpose, seq, content (the bytes)
 *   files:all              ZSET   id by seq (every file: the admin's list)
 *   files:owner:<owner>    ZSET   id by seq (one owner's list)
 *   file:seq               STRING INCR counter giving the list order
 * A put writes all three in one MULTI; a delete removes them in one MULTI.
 */
import type { Redis } from 'ioredis';
import type { Scope } from '../../jobs/model.js';
import { guarded } from '../redis/faults.js';
import { visibleTo, type FileListQuery, type FileStore, type StoredFile } from './types.js';

export class RedisFileStore implements FileStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string): string {
    return `${this.prefix}file:${id}`;
  }

  private listKey(scope: Scope): string {
    return scope.kind === 'admin' ? `${this.prefix}files:all` : `${this.prefix}files:owner:${scope.owner}`;
  }

  async put(file: StoredFile, content: Buffer): Promise<void> {
    await this.guard(async () => {
      const seq = await this.redis.incr(`${this.prefix}file:seq`);
      await this.redis
        .multi()
        .hset(this.key(file.id), { owner: file.owner, bytes: file.bytes, createdAt: file.createdAt, filename: file.filename, purpose: file.purpose, seq, content })
        .zadd(`${this.prefix}files:all`, seq, file.id)
        .zadd(`${this.prefix}files:owner:${file.owner}`, seq, file.id)
        .exec();
    });
  }

  async get(scope: Scope, id: string): Promise<StoredFile | undefined> {
    const file = await this.meta(id);
    return file && visibleTo(scope, file.owner) ? file : undefined;
  }

  async content(scope: Scope, id: string): Promise<Buffer | undefined> {
    const [owner, content] = await this.guard(() => this.redis.hmgetBuffer(this.key(id), 'owner', 'content'));
    if (!owner || !content || !visibleTo(scope, owner.toString('utf8'))) return undefined;
    return content;
  }

  async list(scope: Scope, query: FileListQuery): Promise<{ files: StoredFile[]; hasMore: boolean }> {
    const key = this.listKey(scope);
    let max = '+inf';
    if (query.after !== undefined) {
      const score = await this.guard(() => this.redis.zscore(key, query.after!));
      if (score === null) return { files: [], hasMore: false };
      max = `(${score}`;
    }
    const files: StoredFile[] = [];
    // Page through the index: a purpose filter may skip entries.
    for (let offset = 0; files.length <= query.limit; offset += 100) {
      const ids = await this.guard(() => this.redis.zrevrangebyscore(key, max, '-inf', 'LIMIT', offset, 100));
      for (const id of ids) {
        const file = await this.meta(id);
        if (file && (query.purpose === undefined || file.purpose === query.purpose)) files.push(file);
      }
      if (ids.length < 100) break;
    }
    return { files: files.slice(0, query.limit), hasMore: files.length > query.limit };
  }

  async delete(scope: Scope, id: string): Promise<boolean> {
    const file = await this.get(scope, id);
    if (!file) return false;
    await this.guard(() =>
      this.redis.multi().del(this.key(id)).zrem(`${this.prefix}files:all`, id).zrem(`${this.prefix}files:owner:${file.owner}`, id).exec(),
    );
    return true;
  }

  async close(): Promise<void> {
    // The connection is the job store's; it closes it.
  }

  private async meta(id: string): Promise<StoredFile | undefined> {
    const [owner, bytes, createdAt, filename, purpose] = await this.guard(() => this.redis.hmget(this.key(id), 'owner', 'bytes', 'createdAt', 'filename', 'purpose'));
    if (owner === null || owner === undefined) return undefined;
    return { id, owner, bytes: Number(bytes), createdAt: Number(createdAt), filename: filename ?? '', purpose: purpose ?? '' };
  }

  /** Redis faults become StoreErrors by the job store's one rule (redis/faults.ts). */
  private guard<T>(run: () => Promise<T>): Promise<T> {
    return guarded(run);
  }
}
