-- Claims the probe of an endpoint whose circuit is open and whose cooldown has passed: the one
-- attempt that tells whether it is back. Only one replica gets it until the probe lease ends.
-- KEYS[1] endpoint state hash
-- ARGV: probeLeaseMs
-- Time is Redis's own (TIME), so replicas with skewed clocks agree.
-- Returns { 1 } when this caller probes, { 0, reason, waitMs } when not ('closed' with 0: the
-- circuit closed meanwhile, go ahead as usual).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'state', 'openUntil', 'probeUntil')
if b[1] ~= 'open' then return { 0, 'closed', 0 } end
local openUntil = tonumber(b[2]) or 0
if now < openUntil then return { 0, 'circuit_open', openUntil - now } end
local probeUntil = tonumber(b[3]) or 0
if probeUntil > now then return { 0, 'circuit_probing', math.min(probeUntil - now, 1000) } end
redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[1]))
return { 1 }
