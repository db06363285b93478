-- A task ends. KEYS: record, pending counter, file expiry schedule. ARGV: key, status,
-- completed_iso, result json, files json ('' for none), ttl seconds, now_ms.
-- A task already ended (cancelled) is left as it is.
local r = load(KEYS[1])
if not pending(r) then return 0 end
if ARGV[5] ~= '' then
  r.files = ARGV[5]
  redis.call('HSET', KEYS[1], 'files', ARGV[5])
  -- Its files go when the record does.
  redis.call('ZADD', KEYS[3], tonumber(ARGV[7]) + tonumber(ARGV[6]) * 1000, ARGV[1])
end
settle(KEYS[1], KEYS[2], ARGV[1], r, ARGV[2], ARGV[3], ARGV[4], ARGV[6])
return 1
