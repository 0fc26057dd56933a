/**
 * The Redis store's atomic operations, one Lua script each (see luaCommon.ts for the
 * helpers and keys.ts for the layout). Argument order is fixed by the callers in
 * redisStore.ts; every script takes the key prefix as ARGV[1].
 */
import { LuaScript } from './luaScript.js';

/**
 * ARGV: prefix, now, maxJobs, maxActivePerOwner, id, owner, model, status, createdAt, metadata, options, maxBytes,
 * keysHex, nDup, (dupKey, indexes)*, texts*. Returns {1, evicted, record}, {0, storedJobs} or {2, ownerActiveJobs}.
 */
export const ADMIT = new LuaScript('admit', String.raw`
local now, max_jobs, max_active = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local id, owner, status, created = ARGV[5], ARGV[6], ARGV[8], ARGV[9]
local max_bytes, keys_hex, n_dup = tonumber(ARGV[12]), ARGV[13], tonumber(ARGV[14])
local first_dup = 15
local first_text = first_dup + 2 * n_dup
local n = #ARGV - first_text + 1

local active = owner_over_cap(owner, max_active)
if active then return {2, active} end
local evicted = #sweep(now) + evict_for_room(max_jobs)
local stored = redis.call('HLEN', META)
if stored >= max_jobs then return {0, stored} end

local m = new_member(id)
local state, hits, dims = string.rep('0', n), 0, false
if max_bytes > 0 and keys_hex ~= '' then state, hits, dims = fill_from_cache(id, state, 0, keys_hex, now) end
redis.call('SET', jk(id, ':state'), state)
local texts = {}
for i = 0, n - 1 do
  texts[#texts + 1] = i
  texts[#texts + 1] = ARGV[first_text + i]
end
if n > 0 then batched('HSET', jk(id, ':text'), texts, 1000) end
if keys_hex ~= '' then redis.call('SET', jk(id, ':keys'), keys_hex) end
if n_dup > 0 then
  local dups = {}
  for i = first_dup, first_text - 1 do dups[#dups + 1] = ARGV[i] end
  batched('HSET', jk(id, ':dup'), dups, 1000)
end
redis.call('HSET', jk(id), 'id', id, 'owner', owner, 'model', ARGV[7], 'status', status, 'm', m,
  'createdAt', created, 'startedAt', status == 'running' and created or '', 'completedAt', '', 'expiresAt', '',
  'total', n, 'completed', hits, 'failed', 0, 'dims', dims or '', 'metadata', ARGV[10], 'options', ARGV[11],
  'errors', '[]', 'retryOf', '', 'failCode', '', 'failError', '')
index_job(id, m, owner, status, created)
bump('jobs_created', owner)
if hits > 0 then redis.call('HINCRBY', STATS, 'cache_hits', hits) end
return {1, evicted, redis.call('HGETALL', jk(id))}
`, [4]);

/**
 * ARGV: prefix, now, maxJobs, oldId, admin, scopeOwner, newId, newOwner, status, createdAt, maxBytes, maxActivePerOwner.
 * Returns {'admitted', evicted, record}, {'full', storedJobs}, {'owner-active', activeJobs}, {'not-found'} or {'active'}.
 */
export const ADMIT_RETRY = new LuaScript('admitRetry', String.raw`
local now, max_jobs, old = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local id, owner, status, created, max_bytes = ARGV[7], ARGV[8], ARGV[9], ARGV[10], tonumber(ARGV[11])
local o = redis.call('HMGET', jk(old), 'owner', 'status', 'expiresAt', 'model', 'total', 'metadata', 'options', 'dims')
if not o[1] or not visible(ARGV[5], ARGV[6], o[1]) then return {'not-found'} end
-- Past its TTL the job is gone (Redis may already have expired some of its keys).
if o[3] ~= '' and tonumber(o[3]) <= tonumber(now) then return {'not-found'} end
if is_active(o[2]) then return {'active'} end
local active = owner_over_cap(owner, tonumber(ARGV[12]))
if active then return {'owner-active', active} end

-- Copy first: the eviction below may remove the old job itself (the oldest finished one).
local old_state = redis.call('GET', jk(old, ':state')) or ''
local state = string.gsub(old_state, '[034]', '0')
local _, done = string.gsub(old_state, '[12]', '')
for _, s in ipairs({':vec', ':text', ':keys', ':dup'}) do
  -- COPY keeps the source's TTL; the new job is active, so none of its keys may expire.
  if redis.call('COPY', jk(old, s), jk(id, s)) == 1 then redis.call('PERSIST', jk(id, s)) end
end
local evicted = #sweep(now) + evict_for_room(max_jobs)
local stored = redis.call('HLEN', META)
if stored >= max_jobs then
  redis.call('UNLINK', jk(id, ':vec'), jk(id, ':text'), jk(id, ':keys'), jk(id, ':dup'))
  return {'full', stored}
end

local hits, dims = 0, false
local keys_hex = redis.call('GET', jk(id, ':keys'))
if max_bytes > 0 and keys_hex then state, hits, dims = fill_from_cache(id, state, 0, keys_hex, now) end
redis.call('SET', jk(id, ':state'), state)
local m = new_member(id)
redis.call('HSET', jk(id), 'id', id, 'owner', owner, 'model', o[4], 'status', status, 'm', m,
  'createdAt', created, 'startedAt', status == 'running' and created or '', 'completedAt', '', 'expiresAt', '',
  'total', o[5], 'completed', done + hits, 'failed', 0, 'dims', o[8] ~= '' and o[8] or (dims or ''),
  'metadata', o[6], 'options', o[7], 'errors', '[]', 'retryOf', old, 'failCode', '', 'failError', '')
index_job(id, m, owner, status, created)
bump('jobs_created', owner)
if hits > 0 then redis.call('HINCRBY', STATS, 'cache_hits', hits) end
return {'admitted', evicted, redis.call('HGETALL', jk(id))}
`, [3, 6]);

/** ARGV: prefix, id, to, allowed (",from1,from2,"), at, expiresAt|'', counter|'', errorJson|'', errorCode, errorMessage. */
export const TRANSITION = new LuaScript('transition', String.raw`
local id, to, allowed, at, expires, counter, err_json = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local job = jk(id)
local r = redis.call('HMGET', job, 'status', 'owner', 'createdAt', 'm', 'errors')
local cur, owner, created, m, errors = r[1], r[2], r[3], r[4], r[5]
if not cur or not string.find(allowed, ',' .. cur .. ',', 1, true) then return false end
if err_json ~= '' then
  if errors == '[]' then errors = '[' .. err_json .. ']' else errors = string.sub(errors, 1, -2) .. ',' .. err_json .. ']' end
end
if to == 'failed' and err_json ~= '' then
  local state = redis.call('GET', jk(id, ':state'))
  local failed_state, n = string.gsub(state or '', '0', '4')
  if n > 0 then
    redis.call('SET', jk(id, ':state'), failed_state)
    redis.call('HINCRBY', job, 'failed', n)
    redis.call('HSET', job, 'failCode', ARGV[9], 'failError', ARGV[10])
  end
end
redis.call('HSET', job, 'status', to, 'completedAt', counter ~= '' and at or '', 'expiresAt', expires, 'errors', errors)
if to == 'running' then redis.call('HSET', job, 'startedAt', at) end
redis.call('ZREM', status_idx(cur), m)
redis.call('ZREM', owner_status_idx(cur, owner), m)
redis.call('ZADD', status_idx(to), created, m)
redis.call('ZADD', owner_status_idx(to, owner), created, m)
if counter ~= '' then
  bump(counter, owner)
  redis.call('ZADD', P .. 'idx:finished', at, m)
  drop_done_texts(id)
end
local record = redis.call('HGETALL', job)
if counter ~= '' and expires ~= '' then
  redis.call('ZADD', P .. 'idx:expires', expires, id)
  for _, s in ipairs(SUFFIXES) do redis.call('PEXPIREAT', jk(id, s), expires) end
end
return record
`, [1]);

/** ARGV: prefix, id, now, maxBytes, dims, nDone, (index, truncated, vector)*, nFailed, (index, code, error)*. */
export const RECORD_CHUNK = new LuaScript('recordChunk', String.raw`
local id, now, max_bytes = ARGV[2], ARGV[3], tonumber(ARGV[4])
local job = jk(id)
if redis.call('HGET', job, 'status') ~= 'running' then return 0 end
local state_key, keys_key, dup_key = jk(id, ':state'), jk(id, ':keys'), jk(id, ':dup')
local has_keys = redis.call('EXISTS', keys_key) == 1
local done, failed = 0, 0

local function key_of(i)
  if not has_keys then return false end
  local k = redis.call('GETRANGE', keys_key, i * 64, i * 64 + 63)
  return #k == 64 and k
end

-- Applies mark to i and to every other document of the job with the same text.
local function each_copy(i, mark)
  mark(i)
  local k = key_of(i)
  if not k then return false end
  local d = redis.call('HGET', dup_key, k)
  if d then for j in string.gmatch(d, '%d+') do mark(tonumber(j)) end end
  return k
end

local function pending(i) return redis.call('GETRANGE', state_key, i, i) == '0' end

local n_done = tonumber(ARGV[6])
local pos = 7
-- A vector of another length than the job's (fixed by its first) fails INVALID_VECTOR instead.
local dims = tonumber(redis.call('HGET', job, 'dims') or '')
if not dims and n_done > 0 then dims = tonumber(ARGV[5]) end
local fails = {}
for _ = 1, n_done do
  local i, flag, blob = tonumber(ARGV[pos]), ARGV[pos + 1], ARGV[pos + 2]
  pos = pos + 3
  local c = flag == '1' and '2' or '1'
  if dims and #blob ~= dims * 4 then
    fails[#fails + 1] = {i, 'INVALID_VECTOR\nThe backend returned ' .. (#blob / 4) .. ' dimensions where this job\'s vectors have ' .. dims}
  else
    local k = each_copy(i, function(j)
      if pending(j) then
        redis.call('SETRANGE', state_key, j, c)
        redis.call('HSET', jk(id, ':vec'), j, blob)
        done = done + 1
      end
    end)
    if k and max_bytes > 0 then cache_put(k, flag, blob, now) end
  end
end
local n_failed = tonumber(ARGV[pos])
pos = pos + 1
for _ = 1, n_failed do
  fails[#fails + 1] = {tonumber(ARGV[pos]), ARGV[pos + 1] .. '\n' .. ARGV[pos + 2]}
  pos = pos + 3
end
for _, f in ipairs(fails) do
  local i, reason = f[1], f[2]
  each_copy(i, function(j)
    if pending(j) then
      redis.call('SETRANGE', state_key, j, '3')
      redis.call('HSET', jk(id, ':err'), j, reason)
      failed = failed + 1
    end
  end)
end
if done > 0 then redis.call('HINCRBY', job, 'completed', done) end
if failed > 0 then redis.call('HINCRBY', job, 'failed', failed) end
-- Generation results (recordGenerations) have no dimensions.
if done > 0 and dims and redis.call('HGET', job, 'dims') == '' then redis.call('HSET', job, 'dims', dims) end
if max_bytes > 0 then cache_trim(max_bytes) end
return 1
`, [1]);

/** ARGV: prefix, id, from, to, now, maxBytes. Returns index, text, index, text, ... */
export const PENDING_DOCUMENTS = new LuaScript('pendingDocuments', String.raw`
local id, now, max_bytes = ARGV[2], ARGV[5], tonumber(ARGV[6])
local job = jk(id)
local r = redis.call('HMGET', job, 'status', 'total')
if r[1] ~= 'running' then return {} end
local from, to = tonumber(ARGV[3]), math.min(tonumber(ARGV[4]), tonumber(r[2]))
if from >= to then return {} end
local state = redis.call('GETRANGE', jk(id, ':state'), from, to - 1)
local keys_hex = redis.call('GETRANGE', jk(id, ':keys'), from * 64, to * 64 - 1)
if keys_hex == '' then keys_hex = false end

if max_bytes > 0 and keys_hex then
  local filled, hits, dims = fill_from_cache(id, state, from, keys_hex, now)
  if hits > 0 then
    redis.call('SETRANGE', jk(id, ':state'), from, filled)
    redis.call('HINCRBY', job, 'completed', hits)
    redis.call('HINCRBY', STATS, 'cache_hits', hits)
    if redis.call('HGET', job, 'dims') == '' then redis.call('HSET', job, 'dims', dims) end
    state = filled
  end
end

-- One document per distinct text: a text that occurs again in the job is returned only as its
-- lowest pending copy (the others are filled when it is recorded), even across ranges in flight.
local dup_hash = jk(id, ':dup')
local has_dups = keys_hex and redis.call('EXISTS', dup_hash) == 1
local state_key = jk(id, ':state')
local function lowest_pending_copy(k, i)
  local d = redis.call('HGET', dup_hash, k)
  if not d then return true end
  for j in string.gmatch(d, '%d+') do
    j = tonumber(j)
    if j >= i then return true end
    if redis.call('GETRANGE', state_key, j, j) == '0' then return false end
  end
  return true
end
local seen, chosen = {}, {}
for pos = 1, #state do
  if string.sub(state, pos, pos) == '0' then
    local k = keys_hex and string.sub(keys_hex, (pos - 1) * 64 + 1, pos * 64)
    if not k or not seen[k] then
      if k then seen[k] = true end
      local i = from + pos - 1
      if not (has_dups and k) or lowest_pending_copy(k, i) then chosen[#chosen + 1] = i end
    end
  end
end
if #chosen == 0 then return {} end
if max_bytes > 0 then redis.call('HINCRBY', STATS, 'cache_misses', #chosen) end
local texts = batched('HMGET', jk(id, ':text'), chosen, 1000)
local out = {}
for n, i in ipairs(chosen) do
  out[#out + 1] = i
  out[#out + 1] = texts[n]
end
return out
`, [1]);
