-- Admit and enqueue every task of one request, or none: rate_per_minute, then max_pending.
-- KEYS: rate zset, pending counter, queue, then the record of each task; with a result-cache
--       entry (ARGV[8] > 0) two more: the entry and the record of the task it named when read.
-- ARGV: -, -, now_ms, rate_per_minute, max_pending, queued_iso, account, cache_ttl,
--       the key the cache entry named ('' for none), then (key, name, definition, job,
--       callbacks) per task.
-- Returns {'limit', name, retry_after (-1: retrying cannot help)}, {'created', status json...},
-- {'joined', key, version, status json} for a cache entry naming a pending or succeeded task,
-- or {'stale'} when the cache entry changed since it was read (read it again).
local now = tonumber(ARGV[3])
local rate, max_pending = tonumber(ARGV[4]), tonumber(ARGV[5])
local cache_ttl = tonumber(ARGV[8])
local cache = nil
local n = #KEYS - 3
if cache_ttl > 0 then
  cache = KEYS[#KEYS - 1]
  n = n - 2
  local existing = redis.call('GET', cache) or ''
  if existing ~= ARGV[9] then return {'stale'} end
  if existing ~= '' then
    local found = redis.call('HMGET', KEYS[#KEYS], 'status', 'v', 'json')
    if found[1] and found[1] ~= 'error' then return {'joined', existing, found[2], found[3]} end
  end
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
local recent = redis.call('ZCARD', KEYS[1])
if recent + n > rate then
  if n > rate then return {'limit', 'rate_per_minute', -1} end
  local oldest = redis.call('ZRANGE', KEYS[1], recent + n - rate - 1, recent + n - rate - 1, 'WITHSCORES')
  return {'limit', 'rate_per_minute', math.max(1, math.ceil((tonumber(oldest[2]) + 60000 - now) / 1000))}
end
local pending_now = tonumber(redis.call('GET', KEYS[2]) or '0')
if pending_now + n > max_pending then
  if n > max_pending then return {'limit', 'max_pending', -1} end
  return {'limit', 'max_pending', 1}
end

local out = {'created'}
local scored = {}
local keys = {}
for i = 1, n do
  local a = 9 + (i - 1) * 5
  local key = ARGV[a + 1]
  local json = status_json(key, {status = 'queued', queued = ARGV[6]})
  local fields = {'status', 'queued', 'queued', ARGV[6], 'account', ARGV[7], 'name', ARGV[a + 2],
    'definition', ARGV[a + 3], 'job', ARGV[a + 4], 'v', 1, 'json', json}
  if ARGV[a + 5] ~= '' then
    fields[#fields + 1] = 'callbacks'
    fields[#fields + 1] = ARGV[a + 5]
  end
  redis.call('HSET', KEYS[3 + i], unpack(fields))
  scored[#scored + 1] = now
  scored[#scored + 1] = key
  keys[i] = key
  out[i + 1] = json
end
-- One ZADD per set for the whole request.
call_chunked('ZADD', KEYS[3], scored)
call_chunked('ZADD', KEYS[1], scored)
if cache then
  -- Identical requests now join this task; `settle` keeps the entry on success, drops it on error.
  redis.call('SET', cache, ARGV[10])
  redis.call('HSET', KEYS[4], 'cache', cache, 'cache_ttl', cache_ttl)
end
redis.call('INCRBY', KEYS[2], n)
redis.call('PEXPIRE', KEYS[1], 60000)
-- Idle workers wake on this and claim these keys at once.
redis.call('PUBLISH', WAKE_CHANNEL, table.concat(keys, ' '))
return out
