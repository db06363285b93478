-- A worker starts a task. KEYS: record. ARGV: key, started_iso. Returns 0 if it must not run.
local r = load(KEYS[1])
if not pending(r) then return 0 end
r.status, r.started = 'executing', ARGV[2]
commit(KEYS[1], ARGV[1], r, {'status', 'executing', 'started', ARGV[2]})
return 1
