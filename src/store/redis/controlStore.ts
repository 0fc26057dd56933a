/**
 * The job-control port (store/control.ts) in Redis, beside the job keys (keys.ts) under the
 * same prefix. Additive keys only:
 *   ctl:job:<id>            STRING  the job's control record (JSON)
 *   ctl:jobs                SET     ids with a control record (the sweep drops those whose job is gone)
 *   idem:<owner>:<key>      STRING  an Idempotency-Key's answer (JSON), PXAT its expiry;
 *                                   owner and key URI-encoded so neither can contain the separator
 */
import type { Redis } from 'ioredis';
import type { Priority } from '../../jobs/priority.js';
import type { ControlStore, IdempotentAnswer, JobControl } from '../control.js';
import type { RedisKeys } from './keys.js';

/** KEYS: the record; ARGV: priority. Rewrites the record's priority if it exists. */
const SET_PRIORITY = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local c = cjson.decode(raw)
c.priority = ARGV[1]
redis.call('SET', KEYS[1], cjson.encode(c), 'KEEPTTL')
return 1`;

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
      if (raw) out.set(jobIds[i]!, JSON.parse(raw) as JobControl);
    });
    return out;
  }

  async setPriority(jobId: string, priority: Priority): Promise<boolean> {
    return (await this.redis.eval(SET_PRIORITY, 1, this.controlKey(jobId), priority)) === 1;
  }

  async deleteControl(jobId: string): Promise<void> {
    await this.redis.multi().del(this.controlKey(jobId)).srem(this.controlSet, jobId).exec();
  }

  async controlledJobIds(): Promise<string[]> {
    return this.redis.smembers(this.controlSet);
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
