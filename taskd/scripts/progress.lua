-- A running task reports progress. KEYS: record. ARGV: -, -, key, attempt, progress json.
-- Only the attempt holding the lease may: a worker that lost it publishes nothing.
local r = load(KEYS[1])
if r.status ~= 'executing' or r.lease ~= ARGV[4] then return 0 end
r.progress = ARGV[5]
commit(KEYS[1], ARGV[3], r, {'progress', ARGV[5]})
return 1
