/**
 * The Redis side of documents_from (store/control.ts `fillScheduledDocuments`): one Lua script
 * writing a scheduled job's documents in the job layout of keys.ts (state bytes '0' pending or
 * '3' failed with "<code>\n<message>" in :err, texts in :text, `total` and `failed` in the record).
 * Filled documents carry no content-cache keys: they are embedded, not looked up.
 */
import { LuaScript } from './luaScript.js';

/** ARGV: prefix, id, (kind 't' text | 'f' failed, text | "code\nmessage")*. Returns 1 when written. */
export const FILL_DOCUMENTS = new LuaScript('fillScheduledDocuments', String.raw`
local id = ARGV[2]
local job = jk(id)
local r = redis.call('HMGET', job, 'status', 'total')
if r[1] ~= 'scheduled' or tonumber(r[2]) ~= 0 then return 0 end
local state, texts, errs, failed = {}, {}, {}, 0
local n = 0
for i = 3, #ARGV - 1, 2 do
  if ARGV[i] == 't' then
    state[#state + 1] = '0'
    texts[#texts + 1] = n
    texts[#texts + 1] = ARGV[i + 1]
  else
    state[#state + 1] = '3'
    errs[#errs + 1] = n
    errs[#errs + 1] = ARGV[i + 1]
    failed = failed + 1
  end
  n = n + 1
end
redis.call('SET', jk(id, ':state'), table.concat(state))
if #texts > 0 then batched('HSET', jk(id, ':text'), texts, 1000) end
if #errs > 0 then batched('HSET', jk(id, ':err'), errs, 1000) end
redis.call('HSET', job, 'total', n)
redis.call('HINCRBY', job, 'failed', failed)
return 1
`);
