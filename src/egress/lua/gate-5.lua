-- Admits one delivery attempt to an endpoint, for every replica at once:
-- circuit breaker, then concurrency lease, then rate (GCRA). Nothing is taken unless all pass.
-- KEYS[1] breaker hash   KEYS[2] in-flight lease zset   KEYS[3] rate "theoretical arrival time"
-- KEYS[4] the endpoint's disabled marker   KEYS[5] the event (returned with the answer, saving a GET)
-- ARGV: unused, leaseId, leaseMs, concurrency, intervalMs (0 = no rate limit), toleranceMs, probeLeaseMs
-- Time is Redis's own (TIME), so replicas with skewed clocks agree.
-- Returns { 1, isProbe, eventJson|false } when admitted, { 0, reason, waitMs } when not.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('EXISTS', KEYS[4]) == 1 then return { 0, 'disabled', 0 } end
local b = redis.call('HMGET', KEYS[1], 'state', 'openUntil', 'probeUntil')
local probe = 0
if b[1] == 'open' then
  local openUntil = tonumber(b[2]) or 0
  if now < openUntil then return { 0, 'circuit_open', openUntil - now } end
  local probeUntil = tonumber(b[3]) or 0
  if probeUntil > now then return { 0, 'circuit_probing', math.min(probeUntil - now, 1000) } end
  probe = 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return { 0, 'concurrency', 0 }
end
local interval = tonumber(ARGV[5])
local tat
if interval > 0 then
  tat = tonumber(redis.call('GET', KEYS[3]) or now)
  if tat < now then tat = now end
  local tolerance = tonumber(ARGV[6])
  if tat - now > tolerance then return { 0, 'rate_limited', tat - now - tolerance } end
end
if probe == 1 then redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[7])) end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
if interval > 0 then
  redis.call('SET', KEYS[3], tat + interval, 'PX', math.ceil(tat + interval - now + 1000))
end
return { 1, probe, redis.call('GET', KEYS[5]) }
