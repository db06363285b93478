-- A stopping worker hands its unfinished tasks back to the queue at once, not after the
-- lease. KEYS: leases, queue, then each task's record. ARGV: -, -, then (key, attempt) per
-- task. The interrupted attempt does not count against max_tries. Returns how many.
local back = {}
for i = 3, #KEYS do
  local key, attempt = ARGV[1 + (i - 2) * 2], ARGV[2 + (i - 2) * 2]
  local r = load(KEYS[i])
  if pending(r) and r.lease == attempt then
    redis.call('HDEL', KEYS[i], 'lease')
    redis.call('HSET', KEYS[i], 'attempt', tonumber(attempt) - 1)
    redis.call('ZREM', KEYS[1], key)
    redis.call('ZADD', KEYS[2], 0, key)
    back[#back + 1] = key
  end
end
if #back > 0 then redis.call('PUBLISH', WAKE_CHANNEL, table.concat(back, ' ')) end
return #back
