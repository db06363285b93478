-- A running task keeps a note for its later attempts (a Slurm job id): `note:NAME`.
-- KEYS: record. ARGV: -, -, attempt, name, value. Only the attempt holding the lease may.
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'note:' .. ARGV[4], ARGV[5])
return 1
