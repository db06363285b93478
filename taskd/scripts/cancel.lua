-- Cancel tasks. KEYS: queue, leases, then (record, pending counter, cache entry or the record
-- again) per task. ARGV: -, -, completed_iso, ttl seconds, then (key, has cache) per task.
-- Returns (status json, definition) per task: the json unchanged and '' if it had ended,
-- else the definition (for its url_errback).
local out = {}
for i = 1, (#KEYS - 2) / 3 do
  local rk = KEYS[3 + (i - 1) * 3]
  local key = ARGV[3 + i * 2]
  local r = load(rk)
  if pending(r) then
    -- Queued: it never starts. Running: its worker stops it on this message (or, if it
    -- missed it, when its next lease renewal finds the lease gone).
    redis.call('ZREM', KEYS[1], key)
    if r.lease then
      redis.call('ZREM', KEYS[2], key)
      redis.call('HDEL', rk, 'lease')
      redis.call('PUBLISH', WAKE_CHANNEL, 'abort ' .. key)
    end
    out[#out + 1] = settle(rk, KEYS[4 + (i - 1) * 3], cache_of(ARGV[4 + i * 2], KEYS[5 + (i - 1) * 3]),
      key, r, 'error', ARGV[3], '"cancelled"', ARGV[4])
    out[#out + 1] = redis.call('HGET', rk, 'definition')
  else
    out[#out + 1] = redis.call('HGET', rk, 'json')
    out[#out + 1] = ''
  end
end
return out
