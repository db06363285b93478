-- Shared by every transition: a record's status JSON is composed here and nowhere else.
-- Stored fields are raw JSON fragments (progress, result, files) or plain strings.
-- `cache`/`cache_ttl`: the result-cache entry a GET create_file made for this task, if any.
local FIELDS = {'status', 'queued', 'started', 'completed', 'progress', 'result', 'files',
  'cache', 'cache_ttl'}

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

-- Write the changed fields, bump the version and publish "version json" on the task's channel.
local function commit(rk, key, r, changes)
  local json = status_json(key, r)
  changes[#changes + 1] = 'json'
  changes[#changes + 1] = json
  redis.call('HSET', rk, unpack(changes))
  local v = redis.call('HINCRBY', rk, 'v', 1)
  redis.call('PUBLISH', 'taskd:status:' .. key, v .. ' ' .. json)
  return json
end

local function settle(rk, pending_key, key, r, status, completed, result, ttl)
  r.status, r.completed, r.result = status, completed, result
  local json = commit(rk, key, r, {'status', status, 'completed', completed, 'result', result})
  redis.call('EXPIRE', rk, ttl)
  if r.cache then
    -- The result cache serves a success for cache_ttl from now; a failure is not reused.
    if status == 'success' then
      redis.call('EXPIRE', r.cache, math.min(tonumber(r.cache_ttl), tonumber(ttl)))
    elseif redis.call('GET', r.cache) == key then
      redis.call('DEL', r.cache)
    end
  end
  if redis.call('DECR', pending_key) <= 0 then redis.call('DEL', pending_key) end
  return json
end
