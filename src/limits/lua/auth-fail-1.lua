-- Counts one failed authentication attempt of a client. The window starts at the client's first
-- failure and lasts windowMs (the key's TTL); later failures do not extend it.
-- KEYS[1]: the client's failure counter. ARGV: windowMs.
-- Returns {failures so far, ms until the window ends}.
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  -- A counter without a TTL (never expected) would lock the client out for good: give it one.
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
