-- Fixed-window rate limit plus an in-flight lease, for every request of one key that arrived in
-- one event-loop turn, in one round trip. Each request is judged as if it had come alone, in
-- order: it is counted in the window, then (if the window allows it) takes a lease if one is free.
-- KEYS[1]: the window, a hash of one count per window index (the index comes from Redis' own
--          clock, so every replica agrees on window boundaries; only the current one is kept);
-- KEYS[2]: sorted set of in-flight leases (score = taken at).
-- Both keys share a {hash tag} (one route and client per call: redis-store.ts), and the script
-- touches no other key, so it runs on Redis Cluster.
-- ARGV: windowMs, maxRequests, maxInFlight, leaseMs, leaseToken1, leaseToken2, ...
-- Returns a pair per token, in order: {1, inFlight} when taken, {0, msUntilWindowEnds} when rate
-- limited, {-1, inFlight} when every slot is in use.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local windowMs = tonumber(ARGV[1])
local maxRequests = tonumber(ARGV[2])
local maxInFlight = tonumber(ARGV[3])
local leaseMs = tonumber(ARGV[4])
local n = #ARGV - 4
local idx = math.floor(now / windowMs)
local windowEnd = (idx + 1) * windowMs
local field = tostring(idx)
local count = redis.call('HINCRBY', KEYS[1], field, n)
if count == n then
  -- The first requests of this window: the count of the window before goes (each first call
  -- drops the others, so there is at most one), and the key expires a second after this window.
  if redis.call('HLEN', KEYS[1]) > 1 then
    for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
      if f ~= field then redis.call('HDEL', KEYS[1], f) end
    end
  end
  redis.call('PEXPIRE', KEYS[1], windowEnd - now + 1000)
end
local before = count - n
local out = {}
local inFlight = -1
local swept = false
local added = false
for i = 1, n do
  if before + i > maxRequests then
    out[2 * i - 1] = 0
    out[2 * i] = windowEnd - now
  else
    if inFlight < 0 then inFlight = redis.call('ZCARD', KEYS[2]) end
    -- Leases older than leaseMs belong to a replica that died mid-request. They only matter when
    -- the set looks full, so they are swept then (not on every request) and the count taken again.
    if inFlight >= maxInFlight and not swept then
      swept = true
      redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - leaseMs)
      inFlight = redis.call('ZCARD', KEYS[2])
    end
    if inFlight >= maxInFlight then
      out[2 * i - 1] = -1
      out[2 * i] = inFlight
    else
      redis.call('ZADD', KEYS[2], now, ARGV[4 + i])
      inFlight = inFlight + 1
      added = true
      out[2 * i - 1] = 1
      out[2 * i] = inFlight
    end
  end
end
if added then redis.call('PEXPIRE', KEYS[2], leaseMs) end
return out
