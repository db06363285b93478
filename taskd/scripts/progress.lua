-- A running task reports progress. KEYS: record. ARGV: key, progress json.
local r = load(KEYS[1])
if r.status ~= 'executing' then return 0 end
r.progress = ARGV[2]
commit(KEYS[1], ARGV[1], r, {'progress', ARGV[2]})
return 1
