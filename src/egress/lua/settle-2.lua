-- Records the end of an admitted attempt: frees its lease and moves the circuit breaker.
-- KEYS[1] breaker hash   KEYS[2] in-flight lease zset
-- ARGV: unused, leaseId, ok (1|0), failureThreshold, cooldownMs, maxCooldownMs, isProbe (1|0)
-- Returns the breaker state after the attempt: 'closed' | 'open' | 'opened' (just opened).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[2])
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0, 'lastSuccessAt', now)
  redis.call('HDEL', KEYS[1], 'openUntil', 'probeUntil', 'failingSince')
  return 'closed'
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSETNX', KEYS[1], 'failingSince', now)
local state = redis.call('HGET', KEYS[1], 'state')
if ARGV[7] == '1' or (state ~= 'open' and failures >= tonumber(ARGV[4])) then
  local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
  local cooldown = math.min(tonumber(ARGV[6]), tonumber(ARGV[5]) * 2 ^ (opens - 1))
  redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', now + cooldown)
  redis.call('HDEL', KEYS[1], 'probeUntil')
  return 'opened'
end
return state or 'closed'
