-- Leases that ran out: their worker died or was cut off. Queue each task again, or after
-- max_tries attempts end it "worker lost".
-- KEYS: leases, queue, then (record, pending counter, cache entry or the record again) per
--       task. ARGV: -, -, now_ms, max_tries, completed_iso, ttl, then (key, has cache) per task.
-- Returns {requeued keys, ended keys}; idle workers are woken for the requeued ones.
local now = tonumber(ARGV[3])
local requeued, ended = {}, {}
for i = 1, (#KEYS - 2) / 3 do
  local key = ARGV[5 + i * 2]
  local rk = KEYS[3 + (i - 1) * 3]
  local expiry = redis.call('ZSCORE', KEYS[1], key)
  if expiry and tonumber(expiry) <= now then
    redis.call('ZREM', KEYS[1], key)
    local r = load(rk)
    if pending(r) and r.lease then
      redis.call('HDEL', rk, 'lease')
      if tonumber(r.attempt) >= tonumber(ARGV[4]) then
        settle(rk, KEYS[4 + (i - 1) * 3], cache_of(ARGV[6 + i * 2], KEYS[5 + (i - 1) * 3]),
          key, r, 'error', ARGV[5], '"worker lost"', ARGV[6])
        ended[#ended + 1] = key
      else
        -- Ahead of the queue: it was already running.
        redis.call('ZADD', KEYS[2], 0, key)
        requeued[#requeued + 1] = key
      end
    end
  end
end
if #requeued > 0 then redis.call('PUBLISH', WAKE_CHANNEL, table.concat(requeued, ' ')) end
return {requeued, ended}
