/**
 * The distributed JobStore: job state, documents, vectors, progress and stats counters in
 * Redis under a key prefix (keys.ts), so any gateway or worker process can call any method
 * on any job. Every operation that reads and then writes is one Lua script (scripts.ts,
 * readScripts.ts), which Redis runs atomically; single reads are single commands.
 *
 * Vectors are stored once, as raw float32 bytes, one hash field per document; keys of an
 * active job never expire, and the terminal transition sets the job's TTL on all of them.
 *
 * Redis faults leave as StoreErrors (faults.ts), never as ioredis errors.
 *
 * `storedBytes` (the --max-store-gb disk cap) is left out on purpose, as the port allows: the
 * store has no local disk, and Redis memory is bounded by Redis's own `maxmemory`.
 */
import { Redis } from 'ioredis';
import type { ChunkOutcome, GenerationOutcome, ItemResult, JobCounters, JobRecord, NewJob, RetryJob, Scope } from '../../jobs/model.js';
import { statesLeadingTo, type JobStatus } from '../../jobs/state.js';
import { cacheKey, cacheKeyPrefix } from '../cacheKey.js';
import type { CachePolicy } from '../sqlite/embeddingCache.js';
import type { ItemErrorCode } from '../../backends/errors.js';
import type { Admission, AdmissionPolicy, CacheStats, FailureSummary, JobStore, ListQuery, TransitionPatch } from '../types.js';
import { vectorToBlob } from '../vectorBlob.js';
import { guarded } from './faults.js';
import { DEFAULT_PREFIX, RedisKeys } from './keys.js';
import type { ScriptArg } from './luaScript.js';
import { COUNTERS, LIST, PURGE, READ_RESULTS, SWEEP, UNFINISHED } from './readScripts.js';
import { itemsFromReply, jobFromHash, memberOf, storedOptions } from './records.js';
import { ADMIT, ADMIT_RETRY, PENDING_DOCUMENTS, RECORD_CHUNK, TRANSITION } from './scripts.js';

export interface RedisStoreOptions {
  /** Prefix of every key, so deployments can share one Redis. @defaultValue '{sollol}:' */
  readonly prefix?: string;
  /** The content cache, kept in Redis under the prefix; `maxBytes: 0` disables it. */
  readonly cache: CachePolicy;
}

const COUNTER_FOR: Partial<Record<JobStatus, string>> = {
  completed: 'jobs_completed',
  failed: 'jobs_failed',
  cancelled: 'jobs_cancelled',
};

/** Opens a store on its own connection (closed by `close()`). */
export function openRedisStore(url: string, options: RedisStoreOptions): RedisJobStore {
  return new RedisJobStore(new Redis(url), options, true);
}

export class RedisJobStore implements JobStore {
  readonly keys: RedisKeys;
  private readonly cachePolicy: CachePolicy;
  private closing: Promise<void> | undefined;

  /** `ownsClient`: `close()` quits the connection. */
  constructor(
    private readonly redis: Redis,
    options: RedisStoreOptions,
    private readonly ownsClient = false,
  ) {
    this.keys = new RedisKeys(options.prefix ?? DEFAULT_PREFIX);
    this.cachePolicy = options.cache;
  }

  private get prefix(): string {
    return this.keys.prefix;
  }

  private get cacheOn(): boolean {
    return this.cachePolicy.maxBytes > 0;
  }

  admit(job: NewJob, policy: AdmissionPolicy): Promise<Admission> {
    return guarded(async () => {
      const { keysHex, dups } = this.contentKeys(job);
      const reply = (await ADMIT.run(this.redis, [
        this.prefix, policy.now, policy.maxJobs, policy.maxActivePerOwner ?? 0, job.id, job.owner, job.model, job.status,
        job.createdAt, JSON.stringify(job.metadata), storedOptions(job.options, job.type ?? 'embed'), this.cachePolicy.maxBytes, keysHex,
        dups.length / 2, ...dups, ...job.documents,
      ])) as [number, number, string[]?];
      if (reply[0] === 0) return { admitted: false, storedJobs: reply[1] };
      if (reply[0] === 2) return { admitted: false, reason: 'owner-active', activeJobs: reply[1] };
      return { admitted: true, job: jobFromHash(reply[2]!), evicted: reply[1] };
    });
  }

  /**
   * Cache keys (64 hex characters per document) and, for texts that occur more than once,
   * key -> "i,j,k": the in-job de-duplication. Both only with the cache on, as in SQLite.
   */
  private contentKeys(job: NewJob): { keysHex: string; dups: string[] } {
    // Generation items are never answered from the (embedding) content cache.
    if (!this.cacheOn || (job.type ?? 'embed') !== 'embed') return { keysHex: '', dups: [] };
    const prefix = cacheKeyPrefix(job.model, job.options);
    const hex = job.documents.map((text) => cacheKey(prefix, text).toString('hex'));
    const byKey = new Map<string, number[]>();
    hex.forEach((key, index) => {
      const indexes = byKey.get(key);
      if (indexes) indexes.push(index);
      else byKey.set(key, [index]);
    });
    const dups = [...byKey].filter(([, indexes]) => indexes.length > 1).flatMap(([key, indexes]) => [key, indexes.join(',')]);
    return { keysHex: hex.join(''), dups };
  }

  admitRetry(scope: Scope, of: string, job: RetryJob, policy: AdmissionPolicy): Promise<Admission | 'not-found' | 'active'> {
    return guarded(async () => {
      const reply = (await ADMIT_RETRY.run(this.redis, [
        this.prefix, policy.now, policy.maxJobs, of, ...scopeArgs(scope), job.id, job.owner, job.status, job.createdAt,
        this.cachePolicy.maxBytes, policy.maxActivePerOwner ?? 0,
      ])) as [string, number?, string[]?];
      if (reply[0] === 'not-found' || reply[0] === 'active') return reply[0];
      if (reply[0] === 'full') return { admitted: false, storedJobs: reply[1]! };
      if (reply[0] === 'owner-active') return { admitted: false, reason: 'owner-active', activeJobs: reply[1]! };
      return { admitted: true, job: jobFromHash(reply[2]!), evicted: reply[1]! };
    });
  }

  get(scope: Scope, id: string): Promise<JobRecord | undefined> {
    return guarded(async () => {
      const flat = await this.redis.call('HGETALL', this.keys.job(id)) as string[];
      if (flat.length === 0) return undefined;
      const job = jobFromHash(flat);
      return visible(scope, job.owner) ? job : undefined;
    });
  }

  status(id: string): Promise<JobStatus | undefined> {
    return guarded(async () => {
      return ((await this.redis.hget(this.keys.job(id), 'status')) ?? undefined) as JobStatus | undefined;
    });
  }

  list(scope: Scope, query: ListQuery): Promise<{ jobs: JobRecord[]; total: number }> {
    return guarded(async () => {
      const [total, jobs] = (await LIST.run(this.redis, [this.prefix, ...scopeArgs(scope), query.status ?? '', query.limit])) as [number, string[][]];
      return { jobs: jobs.map(jobFromHash), total };
    });
  }

  transition(id: string, to: JobStatus, patch: TransitionPatch): Promise<JobRecord | undefined> {
    return guarded(async () => {
      const counter = COUNTER_FOR[to] ?? '';
      const flat = (await TRANSITION.run(this.redis, [
        this.prefix, id, to, `,${statesLeadingTo(to).join(',')},`, patch.at, patch.expiresAt ?? '', counter,
        patch.error ? JSON.stringify(patch.error) : '', patch.error?.code ?? '', patch.error?.error ?? '',
      ])) as string[] | null;
      return flat ? jobFromHash(flat) : undefined;
    });
  }

  /**
   * Answers from the content cache first (those documents become done, as cache hits),
   * then returns the rest, one document per distinct text: duplicates stay pending and
   * are filled when the first of them is recorded.
   */
  pendingDocuments(id: string, from: number, to: number): Promise<{ index: number; text: string }[]> {
    return guarded(async () => {
      from = Math.max(0, from);
      if (!(to > from)) return [];
      const flat = (await PENDING_DOCUMENTS.run(this.redis, [this.prefix, id, from, to, Date.now(), this.cachePolicy.maxBytes])) as (number | string)[];
      const docs: { index: number; text: string }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) docs.push({ index: Number(flat[i]), text: String(flat[i + 1] ?? '') });
      return docs;
    });
  }

  recordChunk(id: string, outcome: ChunkOutcome): Promise<boolean> {
    return guarded(async () => {
      const args: ScriptArg[] = [this.prefix, id, Date.now(), this.cachePolicy.maxBytes, outcome.done[0]?.vector.length ?? '', outcome.done.length];
      for (const item of outcome.done) args.push(item.index, item.truncated ? '1' : '0', vectorToBlob(item.vector));
      args.push(outcome.failed.length);
      for (const item of outcome.failed) args.push(item.index, item.code, item.error);
      return (await RECORD_CHUNK.run(this.redis, args)) === 1;
    });
  }

  failureSummary(id: string, limit: number): Promise<FailureSummary> {
    return guarded(async () => {
    const [errs, job] = await Promise.all([this.redis.hgetall(this.keys.job(id, ':err')), this.redis.hmget(this.keys.job(id), 'failCode', 'failed')]);
    const counts: Record<string, number> = {};
    const first: { index: number; code: ItemErrorCode; error: string }[] = [];
    for (const [field, value] of Object.entries(errs)) {
      const cut = value.indexOf('\n');
      const code = (cut < 0 ? value : value.slice(0, cut)) as ItemErrorCode;
      counts[code] = (counts[code] ?? 0) + 1;
      first.push({ index: Number(field), code, error: cut < 0 ? '' : value.slice(cut + 1) });
    }
    // Documents failed by the job's own failure (state 4) share its code.
    const byJob = Number(job[1] ?? 0) - first.length;
    if (job[0] && byJob > 0) counts[job[0]] = (counts[job[0]] ?? 0) + byJob;
    first.sort((a, b) => a.index - b.index);
    return { counts, first: first.slice(0, limit) };
    });
  }

  /** Generation results go where vectors go (`:vec`, UTF-8 JSON text), through the same script; never into the cache. */
  recordGenerations(id: string, outcome: GenerationOutcome): Promise<boolean> {
    return guarded(async () => {
      const args: ScriptArg[] = [this.prefix, id, Date.now(), 0, '', outcome.done.length];
      for (const item of outcome.done) args.push(item.index, '0', Buffer.from(item.result, 'utf8'));
      args.push(outcome.failed.length);
      for (const item of outcome.failed) args.push(item.index, item.code, item.error);
      return (await RECORD_CHUNK.run(this.redis, args)) === 1;
    });
  }

  private async isGenerationJob(id: string): Promise<boolean> {
    const options = await this.redis.hget(this.keys.job(id), 'options');
    return options !== null && /"jobType":"(generate|chat)"/.test(options);
  }

  readResults(scope: Scope, id: string, offset: number, limit: number): Promise<ItemResult[]> {
    return guarded(async () => {
      // As SQLite's `idx >= offset AND idx < offset + limit`: a negative offset shortens the page.
      if (offset < 0) [offset, limit] = [0, limit + offset];
      if (limit <= 0) return [];
      const reply = (await READ_RESULTS.runBuffer(this.redis, [this.prefix, id, ...scopeArgs(scope), offset, limit])) as (Buffer | null)[];
      return itemsFromReply(reply, offset, reply[0] ? await this.isGenerationJob(id) : false);
    });
  }

  purge(scope: Scope, id: string): Promise<'purged' | 'not-found' | 'active'> {
    return guarded(async () => {
      return (await PURGE.run(this.redis, [this.prefix, id, ...scopeArgs(scope)])) as 'purged' | 'not-found' | 'active';
    });
  }

  sweepExpired(now: number): Promise<string[]> {
    return guarded(async () => {
      return (await SWEEP.run(this.redis, [this.prefix, now])) as string[];
    });
  }

  unfinishedJobs(): Promise<JobRecord[]> {
    return guarded(async () => {
      const flats = (await UNFINISHED.run(this.redis, [this.prefix])) as string[][];
      const order = (flat: string[]): [number, string] => [Number(jobFromHash(flat).createdAt), memberOf(flat)];
      return flats
        .map((flat) => ({ flat, key: order(flat) }))
        .sort((a, b) => a.key[0] - b.key[0] || (a.key[1] < b.key[1] ? -1 : a.key[1] > b.key[1] ? 1 : 0))
        .map(({ flat }) => jobFromHash(flat));
    });
  }

  counters(scope: Scope): Promise<JobCounters> {
    return guarded(async () => {
      const r = ((await COUNTERS.run(this.redis, [this.prefix, ...scopeArgs(scope)])) as (string | number | null)[]).map((v) => Number(v ?? 0));
      const [created = 0, completed = 0, failed = 0, cancelled = 0, pending = 0, running = 0, ...terminal] = r;
      return {
        totalJobsCreated: created,
        totalJobsCompleted: completed,
        totalJobsFailed: failed,
        totalJobsCancelled: cancelled,
        activeJobs: running,
        pendingJobs: pending,
        storedJobs: pending + running + terminal.reduce((sum, n) => sum + n, 0),
      };
    });
  }

  /** Content-cache figures (shared across owners and across the gateways on this prefix). */
  cacheStats(): Promise<CacheStats> {
    return guarded(async () => {
      const [entries, stats] = await Promise.all([
        this.redis.zcard(this.keys.cacheLru),
        this.redis.hmget(this.keys.stats, 'cache_bytes', 'cache_hits', 'cache_misses'),
      ]);
      const [bytes, hits, misses] = stats.map((v) => Number(v ?? 0));
      return { enabled: this.cacheOn, max_bytes: this.cachePolicy.maxBytes, entries, bytes: bytes ?? 0, hits: hits ?? 0, misses: misses ?? 0 };
    });
  }

  /** Idempotent; quits the connection only when the store owns it. */
  close(): Promise<void> {
    this.closing ??= this.ownsClient ? quit(this.redis) : Promise.resolve();
    return this.closing;
  }
}

/** QUIT when connected; otherwise drop the connection (QUIT would wait for a reconnect). */
async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') return void client.disconnect();
  await client.quit().catch(() => client.disconnect());
}

function scopeArgs(scope: Scope): [string, string] {
  return scope.kind === 'admin' ? ['1', ''] : ['0', scope.owner];
}

function visible(scope: Scope, owner: string): boolean {
  return scope.kind === 'admin' || scope.owner === owner;
}
