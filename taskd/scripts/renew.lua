-- A living worker renews the leases of its running tasks. KEYS: leases, then each task's
-- record. ARGV: -, -, new expiry ms, then (key, attempt) per task.
-- Returns the keys whose lease this worker no longer holds (cancelled, or taken back after
-- it could not renew in time): it stops those tasks.
local lost, renewed = {}, {}
for i = 2, #KEYS do
  local key, attempt = ARGV[2 + (i - 1) * 2], ARGV[3 + (i - 1) * 2]
  local held = redis.call('HMGET', KEYS[i], 'status', 'lease')
  if held[1] == 'executing' and held[2] == attempt then
    renewed[#renewed + 1] = ARGV[3]
    renewed[#renewed + 1] = key
  else
    lost[#lost + 1] = key
  end
end
call_chunked('ZADD', KEYS[1], renewed, 'XX')
return lost
