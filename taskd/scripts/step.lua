-- A worker's one round trip: settle the tasks it finished, then claim and start queued ones.
-- KEYS: queue, leases, file expiry schedule, then (record, pending counter, cache entry or
--       the record again) per settled task, then the record of each claim candidate.
-- ARGV: -, -, now_ms, lease expiry ms, now_iso, result_ttl, settles, candidates, how many
--       candidates to return, then (key, attempt, status, completed_iso, result json,
--       files json or '', has cache) per settled task, then the key of each candidate.
-- Returns {settled, claimed, next}: per settled task its final status json, or '' when this
-- attempt no longer held it (cancelled, lease lost: the first terminal status stands);
-- (key, attempt, job, callbacks, account, cache entry or '') per claimed task; and the keys
-- now first in the queue, the candidates of the next step.
local now = tonumber(ARGV[3])
local ttl = ARGV[6]
local n_settle, n_claim = tonumber(ARGV[7]), tonumber(ARGV[8])
local settled, claimed, released, leased = {}, {}, {}, {}

for i = 1, n_settle do
  local a = 9 + (i - 1) * 7
  local key = ARGV[a + 1]
  local rk = KEYS[4 + (i - 1) * 3]
  local r = load(rk)
  settled[i] = ''
  if pending(r) and r.lease == ARGV[a + 2] then
    if ARGV[a + 6] ~= '' then
      r.files = ARGV[a + 6]
      redis.call('HSET', rk, 'files', r.files)
      -- Its files go when the record does.
      redis.call('ZADD', KEYS[3], now + tonumber(ttl) * 1000, key)
    end
    settled[i] = settle(rk, KEYS[5 + (i - 1) * 3], cache_of(ARGV[a + 7], KEYS[6 + (i - 1) * 3]),
      key, r, ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ttl)
    released[#released + 1] = key
  end
end
call_chunked('ZREM', KEYS[2], released)

local first = 9 + n_settle * 7
for i = 1, n_claim do
  local key = ARGV[first + i]
  local rk = KEYS[3 + n_settle * 3 + i]
  -- Whoever removes a key from the queue owns that attempt.
  if redis.call('ZREM', KEYS[1], key) == 1 then
    local r = load(rk)
    if pending(r) and r.job then
      local attempt = (tonumber(r.attempt) or 0) + 1
      local had_progress = r.progress
      r.status, r.started, r.progress = 'executing', ARGV[5], nil
      commit(rk, key, r, {'status', 'executing', 'started', ARGV[5], 'attempt', attempt,
        'lease', attempt})
      -- A re-run is a new attempt: the previous one's progress is not its own.
      if had_progress then redis.call('HDEL', rk, 'progress') end
      leased[#leased + 1] = ARGV[4]
      leased[#leased + 1] = key
      for _, v in ipairs({key, attempt, r.job, r.callbacks or '', r.account, r.cache or ''}) do
        claimed[#claimed + 1] = v
      end
    end
  end
end
call_chunked('ZADD', KEYS[2], leased)

local next = {}
local want = tonumber(ARGV[9])
if want > 0 then
  -- By rank, not by due time: taskd queues nothing for later, and the clocks of the
  -- machines that queue tasks may run ahead of this one.
  next = redis.call('ZRANGE', KEYS[1], 0, want - 1)
end
return {settled, claimed, next}
