/**
 * The Redis key layout of the distributed store. Everything lives under one prefix
 * (`--redis-prefix`, default `sollol:`), so several deployments can share one Redis.
 *
 * Per job (`<id>` is the job's UUID); none of these expire while the job is active, and
 * the terminal transition sets the job's TTL on all of them (PEXPIREAT):
 *   job:<id>        HASH    the job record (status, counters, JSON metadata/options/errors)
 *   job:<id>:state  STRING  one byte per document: 0 pending, 1 done, 2 done+truncated,
 *                           3 failed (error in :err), 4 failed by the job's failure
 *                           (code in the record's failCode/failError, not repeated per document)
 *   job:<id>:vec    HASH    document index -> raw little-endian float32 bytes (vectorToBlob)
 *   job:<id>:err    HASH    document index -> "<code>\n<message>"
 *   job:<id>:text   HASH    document index -> text; texts of done documents are dropped when
 *                           the job finishes (a retry only re-sends the others)
 *   job:<id>:keys   STRING  64 hex characters per document: its content-cache key (cache on)
 *   job:<id>:dup    HASH    cache key -> "i,j,k" for texts that occur more than once in the job
 *
 * Indexes (never expire; sweeps and deletions keep them in step with the jobs):
 *   idx:all, idx:status:<s>, idx:owner:<owner>, idx:owner-status:<s>:<owner>
 *                   ZSET    score createdAt, member "<seq, 16 digits>:<id>" (ties by seq)
 *   idx:finished    ZSET    terminal jobs, score completedAt (eviction order)
 *   idx:expires     ZSET    terminal jobs with a TTL, member id, score expiresAt
 *   idx:meta        HASH    id -> "<member>|<owner>": every stored job; lets a sweep clean the
 *                           indexes after Redis itself has expired the job's keys
 *   seq             STRING  INCR counter for the members
 *   stats           HASH    jobs_created/completed/failed/cancelled, cache_hits/misses/bytes
 *   stats:owner:<owner> HASH  the same job counters for one owner (per-key stats)
 * Content cache (bounded by bytes, least recently used evicted first):
 *   cache:v:<key>   STRING  one byte truncated flag ('0'/'1') + raw float32 bytes
 *   cache:lru       ZSET    key -> last use (epoch ms)
 *
 * The Lua scripts are routed by `<prefix>stats` and name the other keys from its prefix
 * (luaScript.ts): on a Redis Cluster the prefix must carry a hash tag, as the default does.
 * Also under the prefix: `workers` + `worker:<id>` (registry), `fair` (fair-share clock),
 * `reconcile:lock`, `ratelimit:<key>`, `sync:req:<model>` (interactive lane), `bull:*` (BullMQ).
 */

/** Suffixes of a job's own keys, in the order the Lua scripts list them too. */
export const JOB_KEY_SUFFIXES = ['', ':state', ':vec', ':err', ':text', ':keys', ':dup'] as const;

/**
 * The braces are a Redis Cluster hash tag: every key of the deployment hashes to one slot,
 * so the store's scripts and BullMQ's multi-key commands work on a Cluster too.
 * @defaultValue '{sollol}:'
 */
export const DEFAULT_PREFIX = '{sollol}:';

export class RedisKeys {
  constructor(readonly prefix: string) {
    if (prefix.length === 0) throw new Error('The Redis key prefix must not be empty');
  }

  job(id: string, suffix: (typeof JOB_KEY_SUFFIXES)[number] = ''): string {
    return `${this.prefix}job:${id}${suffix}`;
  }

  /** Every key a job owns (they may not all exist). */
  jobKeys(id: string): string[] {
    return JOB_KEY_SUFFIXES.map((suffix) => this.job(id, suffix));
  }

  get stats(): string {
    return `${this.prefix}stats`;
  }

  get cacheLru(): string {
    return `${this.prefix}cache:lru`;
  }

  /** A glob matching every key of this deployment (for SCAN in tests and tools). */
  get pattern(): string {
    return `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  }
}
