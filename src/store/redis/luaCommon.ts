/**
 * Lua shared by every script of the Redis store (prepended to each one). Redis runs a
 * script as one atomic step, so each store operation that reads and then writes (admission,
 * transitions, chunk results, purge, sweep) is one script: no other gateway or worker can
 * interleave, and a cancel racing a completion has exactly one winner.
 *
 * KEYS[1] is always `<prefix>stats` (the key the call is routed by, luaScript.ts), followed by
 * the keys of the jobs the call is about; ARGV[1] is the prefix itself. Key names follow keys.ts. Document states are the
 * bytes '0' pending, '1' done, '2' done+truncated, '3' failed, '4' failed by the job's failure.
 */
export const LUA_COMMON = String.raw`
local STATS = KEYS[1]
local P = string.sub(STATS, 1, #STATS - 5)
local META = P .. 'idx:meta'
local LRU = P .. 'cache:lru'
local STATUSES = {'pending', 'running', 'completed', 'failed', 'cancelled', 'scheduled'}
local SUFFIXES = {'', ':state', ':vec', ':err', ':text', ':keys', ':dup'}

-- The jobs a call is about are declared: KEYS[2..] in groups of 7, one per job, in the order
-- of SUFFIXES (luaScript.ts). Their keys are taken from KEYS; only jobs the script finds by
-- itself (sweep and eviction victims, index members) are named from the prefix, in KEYS[1]'s slot.
local DECLARED = {}
for g = 2, #KEYS, #SUFFIXES do
  local keys = {}
  for i, s in ipairs(SUFFIXES) do keys[s] = KEYS[g + i - 1] end
  DECLARED[string.sub(KEYS[g], #P + 5)] = keys
end
local function jk(id, suffix)
  local declared = DECLARED[id]
  if declared then return declared[suffix or ''] end
  return P .. 'job:' .. id .. (suffix or '')
end
local function status_idx(s) return P .. 'idx:status:' .. s end
local function owner_idx(o) return P .. 'idx:owner:' .. o end
local function owner_status_idx(s, o) return P .. 'idx:owner-status:' .. s .. ':' .. o end
local function visible(admin, scope_owner, owner) return admin == '1' or scope_owner == owner end
local function is_active(status) return status == 'pending' or status == 'running' or status == 'scheduled' end

-- Calls cmd on key with args in groups of per: Lua's unpack() has a stack limit (~8000).
local function batched(cmd, key, args, per)
  local out = {}
  for first = 1, #args, per do
    local r = redis.call(cmd, key, unpack(args, first, math.min(first + per - 1, #args)))
    if type(r) == 'table' then for _, v in ipairs(r) do out[#out + 1] = v end end
  end
  return out
end

local function redis_now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Deletes a job's keys and index entries. Works from idx:meta, so it also cleans up after
-- Redis itself expired the job's keys.
local function drop_job(id)
  local meta = redis.call('HGET', META, id)
  if meta then
    local bar = string.find(meta, '|', 1, true)
    local m, o = string.sub(meta, 1, bar - 1), string.sub(meta, bar + 1)
    redis.call('ZREM', P .. 'idx:all', m)
    redis.call('ZREM', P .. 'idx:finished', m)
    redis.call('ZREM', owner_idx(o), m)
    for _, s in ipairs(STATUSES) do
      redis.call('ZREM', status_idx(s), m)
      redis.call('ZREM', owner_status_idx(s, o), m)
    end
    redis.call('HDEL', META, id)
  end
  redis.call('ZREM', P .. 'idx:expires', id)
  local keys = {}
  for i, s in ipairs(SUFFIXES) do keys[i] = jk(id, s) end
  -- UNLINK frees a 30 MB vector hash off the main thread.
  redis.call('UNLINK', unpack(keys))
end

local function sweep(now)
  local ids = redis.call('ZRANGEBYSCORE', P .. 'idx:expires', '-inf', now)
  for _, id in ipairs(ids) do drop_job(id) end
  return ids
end

-- Room for one more job: drops the oldest terminal jobs beyond max_jobs (never an active one).
local function evict_for_room(max_jobs)
  local excess = redis.call('HLEN', META) - max_jobs + 1
  if excess <= 0 then return 0 end
  local victims = redis.call('ZRANGE', P .. 'idx:finished', 0, excess - 1)
  for _, m in ipairs(victims) do drop_job(string.sub(m, 18)) end
  return #victims
end

-- Job counters move together: the whole store's and the owner's.
local function bump(name, owner)
  redis.call('HINCRBY', STATS, name, 1)
  redis.call('HINCRBY', P .. 'stats:owner:' .. owner, name, 1)
end

-- The owner's active job count when it has reached cap (> 0), else false.
local function owner_over_cap(owner, cap)
  if cap <= 0 then return false end
  local active = redis.call('ZCARD', owner_status_idx('pending', owner)) + redis.call('ZCARD', owner_status_idx('running', owner))
  return active >= cap and active
end

local function new_member(id)
  return string.format('%016d', redis.call('INCR', P .. 'seq')) .. ':' .. id
end

local function index_job(id, m, owner, status, created)
  redis.call('ZADD', P .. 'idx:all', created, m)
  redis.call('ZADD', owner_idx(owner), created, m)
  redis.call('ZADD', status_idx(status), created, m)
  redis.call('ZADD', owner_status_idx(status, owner), created, m)
  redis.call('HSET', META, id, m .. '|' .. owner)
end

local function cache_value_key(k) return P .. 'cache:v:' .. k end

-- The cached '<flag><vector bytes>' for key k (marking it recently used), or false.
local function cache_get(k, now)
  local v = redis.call('GET', cache_value_key(k))
  if v then redis.call('ZADD', LRU, now, k) end
  return v
end

local function cache_put(k, flag, blob, now)
  if redis.call('SET', cache_value_key(k), flag .. blob, 'NX') then
    redis.call('ZADD', LRU, now, k)
    redis.call('HINCRBY', STATS, 'cache_bytes', #blob)
  end
end

-- Deletes least recently used entries until the cache fits max_bytes again.
local function cache_trim(max_bytes)
  local excess = tonumber(redis.call('HGET', STATS, 'cache_bytes') or '0') - max_bytes
  while excess > 0 do
    local oldest = redis.call('ZRANGE', LRU, 0, 255)
    if #oldest == 0 then return end
    local freed = 0
    for _, k in ipairs(oldest) do
      if freed >= excess then break end
      local n = redis.call('STRLEN', cache_value_key(k))
      if n > 0 then freed = freed + n - 1 end
      redis.call('UNLINK', cache_value_key(k))
      redis.call('ZREM', LRU, k)
    end
    redis.call('HINCRBY', STATS, 'cache_bytes', -freed)
    excess = excess - freed
  end
end

-- Fills pending documents from the cache. state is the job's state string from document
-- first; keys_hex holds 64 hex characters per document from the same document. Returns the
-- new state string, the number of hits and the dimensions of a hit (or false).
local function fill_from_cache(id, state, first, keys_hex, now)
  local chars, hits, dims = {}, 0, false
  for pos = 1, #state do
    local c = string.sub(state, pos, pos)
    if c == '0' then
      local hit = cache_get(string.sub(keys_hex, (pos - 1) * 64 + 1, pos * 64), now)
      if hit then
        c = string.sub(hit, 1, 1) == '1' and '2' or '1'
        redis.call('HSET', jk(id, ':vec'), first + pos - 1, string.sub(hit, 2))
        hits = hits + 1
        dims = (#hit - 1) / 4
      end
    end
    chars[pos] = c
  end
  return table.concat(chars), hits, dims
end

-- A finished job keeps only what results and a retry need: texts of documents not done.
local function drop_done_texts(id)
  local state = redis.call('GET', jk(id, ':state')) or ''
  if not string.find(state, '[034]') then
    redis.call('UNLINK', jk(id, ':text'), jk(id, ':keys'), jk(id, ':dup'))
    return
  end
  local done = {}
  for pos = 1, #state do
    local c = string.byte(state, pos)
    if c == 49 or c == 50 then done[#done + 1] = pos - 1 end
  end
  if #done > 0 then batched('HDEL', jk(id, ':text'), done, 1000) end
end
`;
