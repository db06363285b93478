-- Store an uploaded file's task, finished at once (its file is already in storage).
-- KEYS: rate zset, record, files schedule. ARGV: -, -, now_ms, rate_per_minute, now_iso,
--       account, key, result json, files json, ttl.
-- Returns {'limit', 'rate_per_minute', retry_after} or {'created', status json}.
local now, rate = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
local recent = redis.call('ZCARD', KEYS[1])
if recent + 1 > rate then
  local oldest = redis.call('ZRANGE', KEYS[1], recent - rate, recent - rate, 'WITHSCORES')
  return {'limit', 'rate_per_minute', math.max(1, math.ceil((tonumber(oldest[2]) + 60000 - now) / 1000))}
end
local key, ttl = ARGV[7], tonumber(ARGV[10])
local r = {status = 'success', queued = ARGV[5], started = ARGV[5], completed = ARGV[5],
  result = ARGV[8], files = ARGV[9]}
local json = status_json(key, r)
redis.call('HSET', KEYS[2], 'status', 'success', 'queued', ARGV[5], 'started', ARGV[5],
  'completed', ARGV[5], 'result', ARGV[8], 'files', ARGV[9], 'account', ARGV[6],
  'name', 'upload', 'v', 1, 'json', json)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('ZADD', KEYS[3], now + ttl * 1000, key)
redis.call('ZADD', KEYS[1], now, key)
redis.call('PEXPIRE', KEYS[1], 60000)
return {'created', json}
