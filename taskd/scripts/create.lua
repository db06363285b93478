-- Admit and enqueue every task of one request, or none: rate_per_minute, then max_pending.
-- KEYS: rate zset, pending counter, arq queue, then (record, arq job) per task, then the
--       result-cache entry when ARGV[7] (cache ttl) > 0.
-- ARGV: now_ms, rate_per_minute, max_pending, queued_iso, account, job_ttl_ms, cache_ttl,
--       then (key, name, definition, job payload) per task.
-- Returns {0, limit, retry_after (-1: retrying cannot help)}, {1, status json...}, or for a
-- cache entry naming a task that is pending or succeeded: {2, its key, version, status json}.
local now = tonumber(ARGV[1])
local rate, max_pending = tonumber(ARGV[2]), tonumber(ARGV[3])
local cache_ttl = tonumber(ARGV[7])
local cache = nil
if cache_ttl > 0 then cache = KEYS[#KEYS] end
local n = (#KEYS - 3 - (cache and 1 or 0)) / 2

if cache then
  local existing = redis.call('GET', cache)
  if existing then
    local found = redis.call('HMGET', 'taskd:task:' .. existing, 'status', 'v', 'json')
    if found[1] and found[1] ~= 'error' then return {2, existing, found[2], found[3]} end
  end
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
local recent = redis.call('ZCARD', KEYS[1])
if recent + n > rate then
  if n > rate then return {0, 'rate_per_minute', -1} end
  local oldest = redis.call('ZRANGE', KEYS[1], recent + n - rate - 1, recent + n - rate - 1, 'WITHSCORES')
  return {0, 'rate_per_minute', math.max(1, math.ceil((tonumber(oldest[2]) + 60000 - now) / 1000))}
end
local pending_now = tonumber(redis.call('GET', KEYS[2]) or '0')
if pending_now + n > max_pending then
  if n > max_pending then return {0, 'max_pending', -1} end
  return {0, 'max_pending', 1}
end

local out = {1}
for i = 1, n do
  local a = 7 + (i - 1) * 4
  local key = ARGV[a + 1]
  local rk = KEYS[4 + (i - 1) * 2]
  local json = status_json(key, {status = 'queued', queued = ARGV[4]})
  redis.call('HSET', rk, 'status', 'queued', 'queued', ARGV[4], 'account', ARGV[5],
    'name', ARGV[a + 2], 'definition', ARGV[a + 3], 'v', 1, 'json', json)
  redis.call('PSETEX', KEYS[5 + (i - 1) * 2], ARGV[6], ARGV[a + 4])
  redis.call('ZADD', KEYS[3], now, key)
  redis.call('ZADD', KEYS[1], now, key)
  out[i + 1] = json
end
if cache then
  -- Identical requests now join this task; `settle` keeps the entry on success, drops it on error.
  redis.call('SET', cache, ARGV[8])
  redis.call('HSET', KEYS[4], 'cache', cache, 'cache_ttl', cache_ttl)
end
redis.call('INCRBY', KEYS[2], n)
redis.call('PEXPIRE', KEYS[1], 60000)
redis.call('PUBLISH', 'taskd:wake', n)
return out
