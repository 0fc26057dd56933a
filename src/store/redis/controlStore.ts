/**
 * The job-control port (store/control.ts) in Redis, beside the job keys (keys.ts) under the
 * same prefix. Additive keys only:
 *   ctl:job:<id>            STRING  the job's control record (JSON)
 *   ctl:jobs                SET     ids with a control record (the sweep drops those whose job is gone)
 *   ctl:webhook:<id>        STRING  the job's webhook and its deliveries (JSON)
 *   ctl:webhooks:open       ZSET    ids of webhooks still waiting or retrying, score createdAt
 *   tpl:<owner>:<name>      STRING  a template (JSON, with its nextRunAt)
 *   tpl:all                 SET     "<owner>:<name>" of every template
 *   tpl:due                 ZSET    "<owner>:<name>" of scheduled templates, score nextRunAt
 *   ab:q:<owner>:<target>   LIST    autobatch entries (JSON), oldest first
 *   ab:targets              SET     "<owner>:<target>" with queued entries
 *   ab:h:<owner>, ab:history-all LIST    autobatch flushes (JSON), newest first, the last 1000
 *   idem:<owner>:<key>      STRING  an Idempotency-Key's answer (JSON), PXAT its expiry;
 *                                   owner and key URI-encoded so neither can contain the separator
 */
import type { Redis } from 'ioredis';
import type { Priority } from '../../jobs/priority.js';
import type { FilledDocument } from '../../jobs/itemFields.js';
import { FILL_DOCUMENTS } from './fillScript.js';
import type { AutobatchEntry, AutobatchFlush, ControlStore, IdempotentAnswer, JobControl, Template, Webhook } from '../control.js';
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

/** KEYS: template, due zset; ARGV: expected, next ('' = none), member. */
const ADVANCE_TEMPLATE = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local t = cjson.decode(raw)
if tonumber(t.nextRunAt) ~= tonumber(ARGV[1]) then return 0 end
if ARGV[2] == '' then
  t.nextRunAt = cjson.null
  redis.call('ZREM', KEYS[2], ARGV[3])
else
  t.nextRunAt = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
end
redis.call('SET', KEYS[1], cjson.encode(t))
return 1`;

/** KEYS: queue, targets set; ARGV: before, member. Pops the entries queued before \`before\` (oldest first). */
const TAKE_AUTOBATCH = `
local all = redis.call('LRANGE', KEYS[1], 0, -1)
local n = 0
for i, raw in ipairs(all) do
  if tonumber(cjson.decode(raw).queuedAt) < tonumber(ARGV[1]) then n = i else break end
end
if n == 0 then return {} end
local out = redis.call('LPOP', KEYS[1], n)
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
return out`;

const enc = encodeURIComponent;

/** KEYS: answer; ARGV: answer JSON, expiresAt, now. Keeps it unless a final unexpired answer is there (returned). */
const KEEP_ANSWER = `
local raw = redis.call('GET', KEYS[1])
if raw then
  local a = cjson.decode(raw)
  if tonumber(a.statusCode) ~= 0 and tonumber(a.expiresAt) > tonumber(ARGV[3]) then return raw end
end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return false`;

/** KEYS: answer; ARGV: reservation JSON, leaseUntil, now. Reserves unless something unexpired is kept (returned). */
const RESERVE_ANSWER = `
local raw = redis.call('GET', KEYS[1])
if raw and tonumber(cjson.decode(raw).expiresAt) > tonumber(ARGV[3]) then return raw end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
return false`;

/** KEYS: answer; ARGV: fingerprint. Drops it if it is that caller's reservation. */
const RELEASE_ANSWER = `
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local a = cjson.decode(raw)
if tonumber(a.statusCode) == 0 and a.fingerprint == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

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

  private key(kind: string, ...parts: string[]): string {
    return `${this.keys.prefix}${kind}${parts.map((p) => `:${enc(p)}`).join('')}`;
  }

  async fillScheduledDocuments(jobId: string, documents: readonly FilledDocument[]): Promise<boolean> {
    const args: (string | number)[] = [this.keys.prefix, jobId];
    for (const doc of documents) args.push(...('text' in doc ? ['t', doc.text] : ['f', `${doc.code}\n${doc.error}`]));
    return (await FILL_DOCUMENTS.run(this.redis, args)) === 1;
  }

  async putTemplate(t: Template): Promise<boolean> {
    const member = `${enc(t.owner)}:${enc(t.name)}`;
    const set = await this.redis.set(this.key('tpl', t.owner, t.name), JSON.stringify(t), 'NX');
    if (set !== 'OK') return false;
    const tx = this.redis.multi().sadd(this.key('tpl:all'), member);
    if (t.nextRunAt !== null) tx.zadd(this.key('tpl:due'), t.nextRunAt, member);
    await tx.exec();
    return true;
  }

  private async templatesByMembers(members: string[]): Promise<Template[]> {
    if (members.length === 0) return [];
    const raws = await this.redis.mget(members.map((m) => `${this.keys.prefix}tpl:${m}`));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as Template);
  }

  async templates(owner: string | null): Promise<Template[]> {
    const members = (await this.redis.smembers(this.key('tpl:all'))).filter((m) => owner === null || m.startsWith(`${enc(owner)}:`));
    return (await this.templatesByMembers(members)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.owner < b.owner ? -1 : 1));
  }

  async template(owner: string, name: string): Promise<Template | undefined> {
    const raw = await this.redis.get(this.key('tpl', owner, name));
    return raw ? (JSON.parse(raw) as Template) : undefined;
  }

  async deleteTemplate(owner: string, name: string): Promise<boolean> {
    const member = `${enc(owner)}:${enc(name)}`;
    const [[, deleted] = [null, 0]] = ((await this.redis.multi().del(this.key('tpl', owner, name)).srem(this.key('tpl:all'), member).zrem(this.key('tpl:due'), member).exec()) ?? []) as [unknown, number][];
    return deleted === 1;
  }

  async dueTemplates(now: number): Promise<Template[]> {
    return this.templatesByMembers(await this.redis.zrangebyscore(this.key('tpl:due'), '-inf', now));
  }

  async advanceTemplate(owner: string, name: string, expected: number, next: number | null): Promise<boolean> {
    const member = `${enc(owner)}:${enc(name)}`;
    return (await this.redis.eval(ADVANCE_TEMPLATE, 2, this.key('tpl', owner, name), this.key('tpl:due'), expected, next ?? '', member)) === 1;
  }

  async queueAutobatch(e: AutobatchEntry): Promise<void> {
    await this.redis.multi().rpush(this.key('ab:q', e.owner, e.target), JSON.stringify(e)).sadd(this.key('ab:targets'), `${enc(e.owner)}:${enc(e.target)}`).exec();
  }

  async autobatchQueued(owner: string | null): Promise<{ owner: string; target: string; documents: number; oldestAt: number }[]> {
    const out: { owner: string; target: string; documents: number; oldestAt: number }[] = [];
    for (const member of (await this.redis.smembers(this.key('ab:targets'))).sort()) {
      const [o, t] = member.split(':').map(decodeURIComponent) as [string, string];
      if (owner !== null && o !== owner) continue;
      const entries = (await this.redis.lrange(this.key('ab:q', o, t), 0, -1)).map((r) => JSON.parse(r) as AutobatchEntry);
      if (entries.length === 0) continue;
      out.push({ owner: o, target: t, documents: entries.reduce((n, e) => n + e.documents.length, 0), oldestAt: Math.min(...entries.map((e) => e.queuedAt)) });
    }
    return out;
  }

  async takeAutobatch(owner: string, target: string, before: number): Promise<AutobatchEntry[]> {
    const raws = (await this.redis.eval(TAKE_AUTOBATCH, 2, this.key('ab:q', owner, target), this.key('ab:targets'), before, `${enc(owner)}:${enc(target)}`)) as string[];
    return raws.map((r) => JSON.parse(r) as AutobatchEntry);
  }

  async addAutobatchFlush(f: AutobatchFlush): Promise<void> {
    const raw = JSON.stringify(f);
    await this.redis.multi()
      .lpush(this.key('ab:h', f.owner), raw).ltrim(this.key('ab:h', f.owner), 0, 999)
      .lpush(this.key('ab:history-all'), raw).ltrim(this.key('ab:history-all'), 0, 999)
      .exec();
  }

  async autobatchHistory(owner: string | null, limit: number): Promise<AutobatchFlush[]> {
    const raws = await this.redis.lrange(owner === null ? this.key('ab:history-all') : this.key('ab:h', owner), 0, limit - 1);
    return raws.map((r) => {
      const f = JSON.parse(r) as AutobatchFlush;
      return { ...f, jobIds: list<string>(f.jobIds) };
    });
  }

  async idempotentAnswer(owner: string, key: string, now: number): Promise<IdempotentAnswer | undefined> {
    const raw = await this.redis.get(this.answerKey(owner, key));
    if (!raw) return undefined;
    const answer = JSON.parse(raw) as IdempotentAnswer;
    return answer.expiresAt > now ? answer : undefined;
  }

  async keepIdempotentAnswer(owner: string, key: string, answer: IdempotentAnswer, now: number): Promise<IdempotentAnswer> {
    const raw = (await this.redis.eval(KEEP_ANSWER, 1, this.answerKey(owner, key), JSON.stringify(answer), answer.expiresAt, now)) as string | null;
    return raw ? (JSON.parse(raw) as IdempotentAnswer) : answer;
  }

  async reserveIdempotency(owner: string, key: string, fingerprint: string, now: number, leaseUntil: number): Promise<IdempotentAnswer | 'reserved'> {
    const reservation: IdempotentAnswer = { fingerprint, statusCode: 0, body: '', expiresAt: leaseUntil };
    const raw = (await this.redis.eval(RESERVE_ANSWER, 1, this.answerKey(owner, key), JSON.stringify(reservation), leaseUntil, now)) as string | null;
    return raw ? (JSON.parse(raw) as IdempotentAnswer) : 'reserved';
  }

  async releaseIdempotency(owner: string, key: string, fingerprint: string): Promise<void> {
    await this.redis.eval(RELEASE_ANSWER, 1, this.answerKey(owner, key), fingerprint);
  }

  /** Redis expires the answers itself. */
  async sweepIdempotency(): Promise<number> {
    return 0;
  }

  /** Other gateways on this Redis may hold them: their lease frees them. */
  async releaseDeadReservations(): Promise<number> {
    return 0;
  }
}
