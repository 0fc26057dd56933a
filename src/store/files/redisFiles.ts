/**
 * FileStore on Redis, under the deployment's prefix:
 *   file:<id>              HASH   owner, bytes, createdAt, filename, purpose, seq, content (the bytes)
 *   files:all              ZSET   id by seq (every file: the admin's list)
 *   files:owner:<owner>    ZSET   id by seq (one owner's list)
 *   file:seq               STRING INCR counter giving the list order
 *   file:<id>:chunks:<w>   LIST   the bytes of a file written in chunks by writer <w> (FileWriter:
 *                                 a batch's output); the hash's `chunks` names the committed writer
 *   file:<id>:writers      SET    every writer that wrote chunks of the file (for delete)
 * A put (or a writer's commit, after its chunks) writes the hash and both indexes in one MULTI;
 * a delete removes them and every writer's chunks. Two writers of one file (two gateways
 * finalising one batch) write the same bytes: the last commit wins, a download goes on with the
 * writer it started with.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Scope } from '../../jobs/model.js';
import { guarded } from '../redis/faults.js';
import { joinChunks, visibleTo, type FileListQuery, type FileStore, type FileWriter, type StoredFile } from './types.js';

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

  put(file: StoredFile, content: Buffer): Promise<void> {
    return this.putHash(file, content, '');
  }

  /** The file's hash and list entries; `chunks` names the writer whose chunks hold the bytes ('' for `content`). */
  private async putHash(file: StoredFile, content: Buffer, chunks: string): Promise<void> {
    await this.guard(async () => {
      const seq = await this.redis.incr(`${this.prefix}file:seq`);
      await this.redis
        .multi()
        .hset(this.key(file.id), { owner: file.owner, bytes: file.bytes, createdAt: file.createdAt, filename: file.filename, purpose: file.purpose, seq, content, chunks })
        .zadd(`${this.prefix}files:all`, seq, file.id)
        .zadd(`${this.prefix}files:owner:${file.owner}`, seq, file.id)
        .exec();
    });
  }

  private chunksKey(id: string, writer: string): string {
    return `${this.prefix}file:${id}:chunks:${writer}`;
  }

  private writersKey(id: string): string {
    return `${this.prefix}file:${id}:writers`;
  }

  async writer(file: Omit<StoredFile, 'bytes'>): Promise<FileWriter> {
    const writer = randomUUID();
    await this.guard(() => this.redis.sadd(this.writersKey(file.id), writer));
    let bytes = 0;
    return {
      append: async (chunk) => {
        if (chunk.length === 0) return;
        await this.guard(() => this.redis.rpush(this.chunksKey(file.id, writer), chunk));
        bytes += chunk.length;
      },
      commit: () => this.putHash({ ...file, bytes }, Buffer.alloc(0), writer),
    };
  }

  async get(scope: Scope, id: string): Promise<StoredFile | undefined> {
    const file = await this.meta(id);
    return file && visibleTo(scope, file.owner) ? file : undefined;
  }

  async content(scope: Scope, id: string): Promise<Buffer | undefined> {
    const chunks = await this.chunks(scope, id);
    return chunks ? joinChunks(chunks) : undefined;
  }

  async chunks(scope: Scope, id: string): Promise<AsyncIterable<Buffer> | undefined> {
    const [owner, content, chunks] = await this.guard(() => this.redis.hmgetBuffer(this.key(id), 'owner', 'content', 'chunks'));
    if (!owner || !content || !visibleTo(scope, owner.toString('utf8'))) return undefined;
    const writer = chunks?.toString('utf8') ?? '';
    if (writer === '') return (async function* one() { yield content; })();
    const key = this.chunksKey(id, writer);
    const guard = this.guard.bind(this);
    const redis = this.redis;
    return (async function* chunked() {
      for (let index = 0; ; index++) {
        const [data] = await guard(() => redis.lrangeBuffer(key, index, index));
        if (data === undefined) return;
        yield data;
      }
    })();
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
    const writers = await this.guard(() => this.redis.smembers(this.writersKey(id)));
    await this.guard(() =>
      this.redis
        .multi()
        .del(this.key(id), this.writersKey(id), ...writers.map((w) => this.chunksKey(id, w)))
        .zrem(`${this.prefix}files:all`, id)
        .zrem(`${this.prefix}files:owner:${file.owner}`, id)
        .exec(),
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
