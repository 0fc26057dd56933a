/**
 * The job-control port (store/control.ts) in Redis, beside the job keys (keys.ts) under the
 * same prefix. Additive keys only:
 *   ctl:job:<id>            STRING  the job's control record (JSON)
 *   ctl:jobs                SET     ids with a control record (the sweep drops those whose job is gone)
 *   ctl:webhook:<id>        STRING  the job's webhook and its deliveries (JSON)
 *   ctl:webhooks:open       ZSET    ids of webhooks still waiting or retrying, score createdAt
 *   idem:<owner>:<key>      STRING  an Idempotency-Key's answer (JSON), PXAT its expiry;
 *                                   owner and key URI-encoded so neither can contain the separator
 */
import type { Redis } from 'ioredis';
import type { Priority } from '../../jobs/priority.js';
import type { ControlStore, IdempotentAnswer, JobControl, Webhook } from '../control.js';
import type { RedisKeys } from './keys.js';

/** KEYS: the record; ARGV: priority. Rewrites the record's priority if it exists. */
const SET_PRIORITY = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local c = cjson.decode(raw)
c.priority = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(c), 'KEEPTTL')
return 1`;

/** KEYS: the webhook; ARGV: now, leaseUntil. The claimed record, or false. */
const CLAIM_WEBHOOK = `
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local w = cjson.decode(raw)
if (w.state ~= 'waiting' and w.state ~= 'retrying') or tonumber(w.nextAttemptAt) > tonumber(ARGV[1]) then return false end
w.nextAttemptAt = tonumber(ARGV[2])
local out = cjson.encode(w)
redis.call('SET', KEYS[1], out)
return out`;

// Lua's cjson writes an empty list back as {}: lists are read back through these.
const list = <T>(value: unknown): T[] => (Array.isArray(value) ? (value as T[]) : []);

function parseControl(raw: string): JobControl {
  const c = JSON.parse(raw) as JobControl;
  return { ...c, dependsOn: list<string>(c.dependsOn) };
}

function parseWebhook(raw: string): Webhook {
  const w = JSON.parse(raw) as Webhook;
  return { ...w, attempts: list(w.attempts) };
}

export class RedisControlStore implements ControlStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  private controlKey(id: string): string {
    return `${this.keys.prefix}ctl:job:${id}`;
  }

  private get controlSet(): string {
    return `${this.keys.prefix}ctl:jobs`;
  }

  private answerKey(owner: string, key: string): string {
    return `${this.keys.prefix}idem:${encodeURIComponent(owner)}:${encodeURIComponent(key)}`;
  }

  async putControl(control: JobControl): Promise<void> {
    await this.redis.multi().set(this.controlKey(control.jobId), JSON.stringify(control)).sadd(this.controlSet, control.jobId).exec();
  }

  async controls(jobIds: readonly string[]): Promise<Map<string, JobControl>> {
    const out = new Map<string, JobControl>();
    if (jobIds.length === 0) return out;
    const raws = await this.redis.mget(jobIds.map((id) => this.controlKey(id)));
    raws.forEach((raw, i) => {
      if (raw) out.set(jobIds[i]!, parseControl(raw));
    });
    return out;
  }

  async setPriority(jobId: string, priority: Priority): Promise<boolean> {
    return (await this.redis.eval(SET_PRIORITY, 1, this.controlKey(jobId), priority)) === 1;
  }

  async deleteControl(jobId: string): Promise<void> {
    await this.redis.multi().del(this.controlKey(jobId), this.webhookKey(jobId)).srem(this.controlSet, jobId).zrem(this.openWebhookSet, jobId).exec();
  }

  async controlledJobIds(): Promise<string[]> {
    return this.redis.smembers(this.controlSet);
  }

  private webhookKey(id: string): string {
    return `${this.keys.prefix}ctl:webhook:${id}`;
  }

  private get openWebhookSet(): string {
    return `${this.keys.prefix}ctl:webhooks:open`;
  }

  async putWebhook(w: Webhook): Promise<void> {
    const open = w.state === 'waiting' || w.state === 'retrying';
    const tx = this.redis.multi().set(this.webhookKey(w.jobId), JSON.stringify(w));
    if (open) tx.zadd(this.openWebhookSet, w.createdAt, w.jobId);
    else tx.zrem(this.openWebhookSet, w.jobId);
    await tx.exec();
  }

  async webhooks(jobIds: readonly string[]): Promise<Map<string, Webhook>> {
    const out = new Map<string, Webhook>();
    if (jobIds.length === 0) return out;
    const raws = await this.redis.mget(jobIds.map((id) => this.webhookKey(id)));
    raws.forEach((raw, i) => {
      if (raw) out.set(jobIds[i]!, parseWebhook(raw));
    });
    return out;
  }

  async openWebhooks(limit: number): Promise<Webhook[]> {
    const ids = await this.redis.zrange(this.openWebhookSet, 0, limit - 1);
    const found = await this.webhooks(ids);
    return ids.map((id) => found.get(id)).filter((w): w is Webhook => w !== undefined && (w.state === 'waiting' || w.state === 'retrying'));
  }

  async claimWebhook(jobId: string, now: number, leaseUntil: number): Promise<Webhook | undefined> {
    const raw = (await this.redis.eval(CLAIM_WEBHOOK, 1, this.webhookKey(jobId), now, leaseUntil)) as string | null;
    return raw ? parseWebhook(raw) : undefined;
  }

  async idempotentAnswer(owner: string, key: string, now: number): Promise<IdempotentAnswer | undefined> {
    const raw = await this.redis.get(this.answerKey(owner, key));
    if (!raw) return undefined;
    const answer = JSON.parse(raw) as IdempotentAnswer;
    return answer.expiresAt > now ? answer : undefined;
  }

  async keepIdempotentAnswer(owner: string, key: string, answer: IdempotentAnswer, now: number): Promise<IdempotentAnswer> {
    const redisKey = this.answerKey(owner, key);
    const set = await this.redis.set(redisKey, JSON.stringify(answer), 'PXAT', answer.expiresAt, 'NX');
    if (set === 'OK') return answer;
    return (await this.idempotentAnswer(owner, key, now)) ?? answer;
  }

  /** Redis expires the answers itself. */
  async sweepIdempotency(): Promise<number> {
    return 0;
  }
}
