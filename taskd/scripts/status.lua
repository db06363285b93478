-- Shared by every script: a record's status JSON is composed here and nowhere else.
-- Every script gets ARGV[1] = the status channel prefix and ARGV[2] = the workers' wake
-- channel; its own arguments start at ARGV[3]. Every key it touches comes in KEYS.
-- Stored fields are raw JSON fragments (progress, result, files, callbacks) or plain strings.
-- `lease`: the attempt that holds the task now (absent when nobody does); `attempt`: tries
-- so far; `cache`: the result-cache entry a GET create_file made for this task, if any.
local STATUS_CHANNEL, WAKE_CHANNEL = ARGV[1], ARGV[2]
local FIELDS = {'status', 'queued', 'started', 'completed', 'progress', 'result', 'files',
  'v', 'lease', 'attempt', 'account', 'job', 'callbacks', 'cache', 'cache_ttl'}

local function load(rk)
  local values = redis.call('HMGET', rk, unpack(FIELDS))
  local r = {}
  for i, field in ipairs(FIELDS) do
    if values[i] then r[field] = values[i] end
  end
  return r
end

local function pending(r)
  return r.status == 'queued' or r.status == 'executing'
end

local function status_json(key, r)
  local p = {'{"status":"', r.status, '","key":"', key, '"'}
  if r.progress then p[#p + 1] = ',"progress":' .. r.progress end
  p[#p + 1] = ',"events":{"queued":"' .. r.queued .. '"'
  if r.started then p[#p + 1] = ',"started":"' .. r.started .. '"' end
  if r.completed then p[#p + 1] = ',"completed":"' .. r.completed .. '"' end
  p[#p + 1] = '}'
  if r.result then p[#p + 1] = ',"result":' .. r.result end
  if r.files then p[#p + 1] = ',"files":' .. r.files end
  p[#p + 1] = '}'
  return table.concat(p)
end

-- Write the changed fields with the new version and publish "version json" on its channel.
local function commit(rk, key, r, changes)
  local json = status_json(key, r)
  r.v = (tonumber(r.v) or 0) + 1
  changes[#changes + 1] = 'json'
  changes[#changes + 1] = json
  changes[#changes + 1] = 'v'
  changes[#changes + 1] = r.v
  redis.call('HSET', rk, unpack(changes))
  redis.call('PUBLISH', STATUS_CHANNEL .. key, r.v .. ' ' .. json)
  return json
end

-- The one terminal transition: only from a pending status, so a task ends exactly once.
-- `cache` is the key of the task's result-cache entry, or nil.
local function settle(rk, pending_key, cache, key, r, status, completed, result, ttl)
  r.status, r.completed, r.result = status, completed, result
  local json = commit(rk, key, r, {'status', status, 'completed', completed, 'result', result})
  redis.call('EXPIRE', rk, ttl)
  if cache then
    -- The result cache serves a success for cache_ttl from now; a failure is not reused.
    if status == 'success' then
      redis.call('EXPIRE', cache, math.min(tonumber(r.cache_ttl), tonumber(ttl)))
    elseif redis.call('GET', cache) == key then
      redis.call('DEL', cache)
    end
  end
  if redis.call('DECR', pending_key) <= 0 then redis.call('DEL', pending_key) end
  return json
end

-- A cache entry key passed in KEYS, or nil when the task has none (flag '1'/'0' in ARGV).
local function cache_of(flag, k)
  if flag == '1' then return k end
  return nil
end

-- A command over many arguments, in chunks: Lua's unpack() takes a few thousand at most.
local function call_chunked(command, key, args, prefix)
  for i = 1, #args, 1000 do
    local chunk = {unpack(args, i, math.min(i + 999, #args))}
    if prefix then table.insert(chunk, 1, prefix) end
    redis.call(command, key, unpack(chunk))
  end
end
