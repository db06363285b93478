-- Cancel a task. KEYS: record, pending counter, arq queue, arq job, arq abort zset, arq in-progress.
-- ARGV: key, completed_iso, ttl seconds, now_ms. Returns {status json, definition}: the json
-- unchanged and no definition if it had ended, else the definition (for its url_errback).
local r = load(KEYS[1])
if not pending(r) then return {redis.call('HGET', KEYS[1], 'json'), ''} end
if redis.call('EXISTS', KEYS[6]) == 1 then
  -- Running: arq cancels the job's asyncio task on its next poll, which the wake-up triggers.
  redis.call('ZADD', KEYS[5], ARGV[4], ARGV[1])
  redis.call('PUBLISH', 'taskd:wake', 0)
else
  -- Queued: it never starts.
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[4])
end
local json = settle(KEYS[1], KEYS[2], ARGV[1], r, 'error', ARGV[2], '"cancelled"', ARGV[3])
return {json, redis.call('HGET', KEYS[1], 'definition')}
