-- Ends an attempt in one call: moves the circuit breaker, adds the attempt to the delivery's
-- record and moves the delivery between its endpoint's status indexes. (How many attempts run at
-- once is the lane's BullMQ global concurrency: egress/lanes.ts.)
-- KEYS[1] endpoint state hash  KEYS[2] record hash
-- KEYS[3] the status index the delivery was in  KEYS[4] the status index it goes to
-- KEYS[5] the endpoint's stats bucket for this minute (stats.ts)
-- ARGV: ok (1|0), failureThreshold, cooldownMs, maxCooldownMs, isProbe (1|0),
--       attempt, attemptJson, status, now, lastStatus, lastError, nextAttemptAt,
--       durationMs, errorClass, latency bucket index ('' when nothing answered), bucket ttl ms
-- Returns { breaker state: 'closed' | 'open' | 'opened' (just now), failingSince or false }.
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Breaker, on Redis's clock. A success on a healthy endpoint (the usual case) writes at most
-- lastSuccessAt, once a second; only a change of health writes more.
local b = redis.call('HMGET', KEYS[1], 'state', 'failures', 'failingSince', 'lastSuccessAt')
local state = b[1] or 'closed'
local failingSince = b[3]
if ARGV[1] == '1' then
  if state ~= 'closed' or (tonumber(b[2]) or 0) ~= 0 or failingSince then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0)
    redis.call('HDEL', KEYS[1], 'openUntil', 'probeUntil', 'failingSince')
  end
  if clock - (tonumber(b[4]) or 0) >= 1000 then redis.call('HSET', KEYS[1], 'lastSuccessAt', clock) end
  state = 'closed'
  failingSince = false
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  if not failingSince then
    failingSince = clock
    redis.call('HSET', KEYS[1], 'failingSince', clock)
  end
  if ARGV[5] == '1' or (state ~= 'open' and failures >= tonumber(ARGV[2])) then
    local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
    local cooldown = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ (opens - 1))
    redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', clock + cooldown)
    redis.call('HDEL', KEYS[1], 'probeUntil')
    state = 'opened'
  end
end

-- Delivery log: the attempt is field a<n> of the record (whose expiry was set at publish).
-- A record past its retention is not brought back, and an attempt older than the one the record
-- already holds (a delivered attempt's record written again after a failover, record.ts, once a
-- later attempt was logged) does not overwrite it.
local rec = redis.call('HMGET', KEYS[2], 'id', 'attempts')
local id = rec[1]
if id and tonumber(ARGV[6]) >= (tonumber(rec[2]) or 0) then
  redis.call('HSET', KEYS[2], 'a' .. ARGV[6], ARGV[7], 'status', ARGV[8], 'attempts', ARGV[6], 'updatedAt', ARGV[9],
    'lastStatus', ARGV[10], 'lastError', ARGV[11], 'nextAttemptAt', ARGV[12], 'lastDurationMs', ARGV[13], 'lastErrorClass', ARGV[14])
  if KEYS[3] ~= KEYS[4] then redis.call('ZREM', KEYS[3], id) end
  redis.call('ZADD', KEYS[4], tonumber(ARGV[9]), id)
end
-- Stats: a few counters in a small hash per endpoint and minute, expiring after the window.
if redis.call('HINCRBY', KEYS[5], 'n', 1) == 1 then redis.call('PEXPIRE', KEYS[5], ARGV[16]) end
if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[5], 'ok', 1) end
if ARGV[15] ~= '' then redis.call('HINCRBY', KEYS[5], 'b' .. ARGV[15], 1) end
return { state, failingSince or false }
