-- Admits one delivery attempt to an endpoint, for every replica at once: disabled, circuit
-- breaker, concurrency lease, rate (GCRA). Nothing is taken unless all pass.
-- KEYS[1] endpoint state hash  KEYS[2] in-flight lease zset  KEYS[3] rate "theoretical arrival time"
-- KEYS[4] the event (returned with the answer, saving a GET)
-- ARGV: leaseId, leaseMs, concurrency, intervalMs (0 = no rate limit), toleranceMs, probeLeaseMs
-- Time is Redis's own (TIME), so replicas with skewed clocks agree.
-- Returns { 1, isProbe, eventJson|false } when admitted, { 0, reason, waitMs } when not.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'disabled', 'state', 'openUntil', 'probeUntil')
if b[1] then return { 0, 'disabled', 0 } end
local probe = 0
if b[2] == 'open' then
  local openUntil = tonumber(b[3]) or 0
  if now < openUntil then return { 0, 'circuit_open', openUntil - now } end
  local probeUntil = tonumber(b[4]) or 0
  if probeUntil > now then return { 0, 'circuit_probing', math.min(probeUntil - now, 1000) } end
  probe = 1
end
-- Leases of a replica that died expire; they are swept only when the limit seems reached.
local limit = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[2]) >= limit then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= limit then return { 0, 'concurrency', 0 } end
end
local interval = tonumber(ARGV[4])
local tat
if interval > 0 then
  tat = tonumber(redis.call('GET', KEYS[3]) or now)
  if tat < now then tat = now end
  if tat - now > tonumber(ARGV[5]) then return { 0, 'rate_limited', tat - now - tonumber(ARGV[5]) } end
  redis.call('SET', KEYS[3], tat + interval, 'PX', math.ceil(tat + interval - now + 1000))
end
if probe == 1 then redis.call('HSET', KEYS[1], 'probeUntil', now + tonumber(ARGV[6])) end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
return { 1, probe, redis.call('GET', KEYS[4]) }
