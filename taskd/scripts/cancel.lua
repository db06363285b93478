-- Cancel a task. KEYS: record, pending counter, queue, leases, cache entry (or the record
-- again when ARGV[6] is '0'). ARGV: -, -, key, completed_iso, ttl seconds, has cache.
-- Returns {status json, definition}: the json unchanged and no definition if it had ended,
-- else the definition (for its url_errback).
local r = load(KEYS[1])
if not pending(r) then return {redis.call('HGET', KEYS[1], 'json'), ''} end
-- Queued: it never starts. Running: its worker stops it on this message (or, if it missed
-- it, when its next lease renewal finds the lease gone).
redis.call('ZREM', KEYS[3], ARGV[3])
if r.lease then
  redis.call('ZREM', KEYS[4], ARGV[3])
  redis.call('HDEL', KEYS[1], 'lease')
  redis.call('PUBLISH', WAKE_CHANNEL, 'abort ' .. ARGV[3])
end
local json = settle(KEYS[1], KEYS[2], cache_of(ARGV[6], KEYS[5]), ARGV[3], r, 'error',
  ARGV[4], '"cancelled"', ARGV[5])
return {json, redis.call('HGET', KEYS[1], 'definition')}
