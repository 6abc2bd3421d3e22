-- Ends an admitted attempt in one call: frees its lease, moves the circuit breaker, appends the
-- attempt to the delivery log and moves the delivery between the status indexes.
-- KEYS[1] breaker hash  KEYS[2] in-flight lease zset  KEYS[3] record hash  KEYS[4] attempts list
-- KEYS[5] endpoint zset  KEYS[6] all zset  KEYS[7..9] status indexes: pending, delivered, failed
-- ARGV: leaseId, ok (1|0), failureThreshold, cooldownMs, maxCooldownMs, isProbe (1|0),
--       id, attemptJson, status, now, ttlSeconds, retentionMs, attempt, lastStatus, lastError, nextAttemptAt, trim (1|0)
-- Returns { breaker state: 'closed' | 'open' | 'opened' (just now), failingSince or false }.
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- breaker (Redis's clock, shared by every replica). A success on a healthy endpoint (the common
-- case) writes one field; only a change of health writes more.
redis.call('ZREM', KEYS[2], ARGV[1])
local b = redis.call('HMGET', KEYS[1], 'state', 'failures', 'failingSince')
local state = b[1] or 'closed'
local failingSince = b[3]
if ARGV[2] == '1' then
  if state ~= 'closed' or (tonumber(b[2]) or 0) ~= 0 or failingSince then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0)
    redis.call('HDEL', KEYS[1], 'openUntil', 'probeUntil', 'failingSince')
  end
  redis.call('HSET', KEYS[1], 'lastSuccessAt', clock)
  state = 'closed'
  failingSince = false
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if not failingSince then
    failingSince = clock
    redis.call('HSET', KEYS[1], 'failingSince', clock)
  end
  if ARGV[6] == '1' or (state ~= 'open' and failures >= tonumber(ARGV[3])) then
    local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
    local cooldown = math.min(tonumber(ARGV[5]), tonumber(ARGV[4]) * 2 ^ (opens - 1))
    redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', clock + cooldown)
    redis.call('HDEL', KEYS[1], 'probeUntil')
    state = 'opened'
  end
end

-- delivery log
local id, status, now, ttl = ARGV[7], ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
-- The record's expiry was set when it was published; the attempts list gets one when created.
if redis.call('RPUSH', KEYS[4], ARGV[8]) == 1 then redis.call('EXPIRE', KEYS[4], ttl) end
redis.call('HSET', KEYS[3], 'status', status, 'attempts', ARGV[13], 'updatedAt', now,
  'lastStatus', ARGV[14], 'lastError', ARGV[15], 'nextAttemptAt', ARGV[16])
local horizon = now - tonumber(ARGV[12])
local trim = ARGV[17] == '1'
for i, s in ipairs({ 'pending', 'delivered', 'failed' }) do
  local key = KEYS[6 + i]
  if s == status then redis.call('ZADD', key, now, id) else redis.call('ZREM', key, id) end
  if trim then redis.call('ZREMRANGEBYSCORE', key, '-inf', horizon) end
end
for _, key in ipairs({ KEYS[5], KEYS[6] }) do
  redis.call('ZADD', key, now, id)
  if trim then redis.call('ZREMRANGEBYSCORE', key, '-inf', horizon) end
end
return { state, failingSince or false }
