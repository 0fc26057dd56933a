/**
 * Scripts that read (list, results, counters) or delete (purge, sweep). The list and the
 * counters first sweep jobs past their TTL by Redis's clock, the clock that expires the
 * keys: a job whose keys Redis has dropped must also leave the indexes and the totals.
 */
import { LuaScript } from './luaScript.js';

/** ARGV: prefix, id, admin, scopeOwner, offset, limit. Returns state slice, failCode, failError, vectors of done, errors of failed. */
export const READ_RESULTS = new LuaScript('readResults', String.raw`
local id = ARGV[2]
local o = redis.call('HMGET', jk(id), 'owner', 'failCode', 'failError')
if not o[1] or not visible(ARGV[3], ARGV[4], o[1]) then return {} end
local offset, limit = tonumber(ARGV[5]), tonumber(ARGV[6])
local state = redis.call('GETRANGE', jk(id, ':state'), offset, offset + limit - 1)
local done, failed = {}, {}
for pos = 1, #state do
  local c = string.byte(state, pos)
  if c == 49 or c == 50 then done[#done + 1] = offset + pos - 1 elseif c == 51 then failed[#failed + 1] = offset + pos - 1 end
end
local out = {state, o[2], o[3]}
for _, v in ipairs(batched('HMGET', jk(id, ':vec'), done, 1000)) do out[#out + 1] = v end
for _, v in ipairs(batched('HMGET', jk(id, ':err'), failed, 1000)) do out[#out + 1] = v end
return out
`, [1]);

/** ARGV: prefix, id, admin, scopeOwner. */
export const PURGE = new LuaScript('purge', String.raw`
local id = ARGV[2]
local o = redis.call('HMGET', jk(id), 'owner', 'status')
if not o[1] or not visible(ARGV[3], ARGV[4], o[1]) then return 'not-found' end
if is_active(o[2]) then return 'active' end
drop_job(id)
return 'purged'
`, [1]);

/** ARGV: prefix, now. Returns the ids removed. */
export const SWEEP = new LuaScript('sweep', String.raw`
return sweep(ARGV[2])
`);

/** ARGV: prefix, admin, scopeOwner, status|'', limit. Returns total, {record, ...}. */
export const LIST = new LuaScript('list', String.raw`
sweep(redis_now())
local admin, owner, status, limit = ARGV[2] == '1', ARGV[3], ARGV[4], tonumber(ARGV[5])
local key
if admin then
  key = status ~= '' and status_idx(status) or P .. 'idx:all'
else
  key = status ~= '' and owner_status_idx(status, owner) or owner_idx(owner)
end
local jobs = {}
if limit > 0 then
  for _, m in ipairs(redis.call('ZREVRANGE', key, 0, limit - 1)) do
    local record = redis.call('HGETALL', jk(string.sub(m, 18)))
    if #record > 0 then jobs[#jobs + 1] = record end
  end
end
return {redis.call('ZCARD', key), jobs}
`);

/**
 * ARGV: prefix, admin, scopeOwner. Returns created, completed, failed, cancelled (the whole store's
 * for an admin, the owner's own otherwise), then a count of stored jobs per status in the scope.
 */
export const COUNTERS = new LuaScript('counters', String.raw`
sweep(redis_now())
local totals = ARGV[2] == '1' and STATS or (P .. 'stats:owner:' .. ARGV[3])
local out = redis.call('HMGET', totals, 'jobs_created', 'jobs_completed', 'jobs_failed', 'jobs_cancelled')
for _, s in ipairs(STATUSES) do
  out[#out + 1] = redis.call('ZCARD', ARGV[2] == '1' and status_idx(s) or owner_status_idx(s, ARGV[3]))
end
return out
`);

/** ARGV: prefix. Records of pending and running jobs. */
export const UNFINISHED = new LuaScript('unfinished', String.raw`
local out = {}
for _, s in ipairs({'pending', 'running'}) do
  for _, m in ipairs(redis.call('ZRANGE', status_idx(s), 0, -1)) do
    local record = redis.call('HGETALL', jk(string.sub(m, 18)))
    if #record > 0 then out[#out + 1] = record end
  end
end
return out
`);
