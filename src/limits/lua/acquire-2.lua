-- Fixed-window rate limit plus an in-flight lease, in one round trip.
-- KEYS[1]: window key base (the window index is appended, from Redis' own clock, so every replica
--          agrees on window boundaries); KEYS[2]: sorted set of in-flight leases (score = taken at).
-- Both keys share a {hash tag}, so the derived window key lives in the same cluster slot.
-- ARGV: windowMs, maxRequests, maxInFlight, leaseMs, leaseToken
-- Returns {1, inFlight} on success, {0, msUntilWindowEnds} when rate limited, {-1, inFlight} when full.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local windowMs = tonumber(ARGV[1])
local idx = math.floor(now / windowMs)
local windowEnd = (idx + 1) * windowMs
local wkey = KEYS[1] .. ':' .. idx
local count = redis.call('INCR', wkey)
if count == 1 then redis.call('PEXPIRE', wkey, windowEnd - now + 1000) end
if count > tonumber(ARGV[2]) then return {0, windowEnd - now} end
-- Leases older than leaseMs belong to a replica that died mid-request. They only matter when the
-- set looks full, so they are swept then (not on every request) and the count taken again.
local inFlight = redis.call('ZCARD', KEYS[2])
if inFlight >= tonumber(ARGV[3]) then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
  inFlight = redis.call('ZCARD', KEYS[2])
  if inFlight >= tonumber(ARGV[3]) then return {-1, inFlight} end
end
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {1, inFlight + 1}
