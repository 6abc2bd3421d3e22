-- Ends a batch of attempts to one endpoint in one call (scripts.ts gathers the attempts that end in
-- one event-loop turn): for each, in order, moves the circuit breaker, adds the attempt to the
-- delivery's record and moves the delivery between its endpoint's status indexes; then counts them
-- all in the endpoint's stats. The outcome is the same as one call per attempt in that order.
-- (How many attempts run at once is the lane's BullMQ global concurrency: egress/lanes.ts.)
-- KEYS[1] endpoint state hash  KEYS[2] the endpoint's stats bucket for this minute (stats.ts)
-- then per attempt i (from 0): KEYS[3+3i] record hash, KEYS[4+3i] the status index the delivery
--   was in, KEYS[5+3i] the status index it goes to
-- ARGV[1..4]: failureThreshold, cooldownMs, maxCooldownMs, bucket ttl ms
-- then per attempt i, ARGV[5+12i ..]: ok (1|0), isProbe (1|0), attempt, attemptJson, status, now,
--   lastStatus, lastError, nextAttemptAt, durationMs, errorClass, latency bucket index ('' when
--   nothing answered)
-- Returns per attempt { breaker state: 'closed' | 'open' | 'opened' (just now), failingSince or
-- false }, or { '!', message } when its record could not be read (a key of another type): that
-- attempt alone fails, before anything of it is written, the breaker included (one call per
-- attempt, as earlier versions made, moved the breaker first).
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local threshold, cooldownMs, maxCooldownMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])

-- The breaker, read once and kept here as each attempt moves it, on Redis's clock. A success on a
-- healthy endpoint (the usual case) writes at most lastSuccessAt, once a second; only a change of
-- health writes more.
local b = redis.call('HMGET', KEYS[1], 'state', 'failures', 'failingSince', 'lastSuccessAt')
local state = b[1] or 'closed'
local failures = tonumber(b[2]) or 0
local failingSince = b[3] or false
local lastSuccessAt = tonumber(b[4]) or 0

local n = (#KEYS - 2) / 3
local out = {}
local count, okCount, buckets = 0, 0, {}
for i = 0, n - 1 do
  local a = 5 + 12 * i
  local ok = ARGV[a] == '1'
  local rk, fromKey, toKey = KEYS[3 + 3 * i], KEYS[4 + 3 * i], KEYS[5 + 3 * i]
  local rec = redis.pcall('HMGET', rk, 'id', 'attempts')
  if rec.err then
    out[i + 1] = { '!', rec.err }
  else
    local reported
    if ok then
      if state ~= 'closed' or failures ~= 0 or failingSince then
        redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opens', 0)
        redis.call('HDEL', KEYS[1], 'openUntil', 'probeUntil', 'failingSince')
      end
      if clock - lastSuccessAt >= 1000 then
        redis.call('HSET', KEYS[1], 'lastSuccessAt', clock)
        lastSuccessAt = clock
      end
      state, failures, failingSince, reported = 'closed', 0, false, 'closed'
    else
      failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
      if not failingSince then
        failingSince = tostring(clock)
        redis.call('HSET', KEYS[1], 'failingSince', clock)
      end
      reported = state
      if ARGV[a + 1] == '1' or (state ~= 'open' and failures >= threshold) then
        local opens = redis.call('HINCRBY', KEYS[1], 'opens', 1)
        local cooldown = math.min(maxCooldownMs, cooldownMs * 2 ^ (opens - 1))
        redis.call('HSET', KEYS[1], 'state', 'open', 'openUntil', clock + cooldown)
        redis.call('HDEL', KEYS[1], 'probeUntil')
        state, reported = 'open', 'opened'
      end
    end
    -- Delivery log: the attempt is field a<n> of the record (whose expiry was set at publish).
    -- A record past its retention is not brought back, and an attempt older than the one the
    -- record already holds (a delivered attempt's record written again after a failover,
    -- record.ts, once a later attempt was logged) does not overwrite it.
    local id = rec[1]
    if id and tonumber(ARGV[a + 2]) >= (tonumber(rec[2]) or 0) then
      redis.call('HSET', rk, 'a' .. ARGV[a + 2], ARGV[a + 3], 'status', ARGV[a + 4], 'attempts', ARGV[a + 2],
        'updatedAt', ARGV[a + 5], 'lastStatus', ARGV[a + 6], 'lastError', ARGV[a + 7], 'nextAttemptAt', ARGV[a + 8],
        'lastDurationMs', ARGV[a + 9], 'lastErrorClass', ARGV[a + 10])
      if fromKey ~= toKey then redis.call('ZREM', fromKey, id) end
      redis.call('ZADD', toKey, tonumber(ARGV[a + 5]), id)
    end
    count = count + 1
    if ok then okCount = okCount + 1 end
    local bucket = ARGV[a + 11]
    if bucket ~= '' then buckets[bucket] = (buckets[bucket] or 0) + 1 end
    out[i + 1] = { reported, failingSince }
  end
end

-- Stats: a few counters in a small hash per endpoint and minute, expiring after the window.
if count > 0 then
  if redis.call('HINCRBY', KEYS[2], 'n', count) == count then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
  if okCount > 0 then redis.call('HINCRBY', KEYS[2], 'ok', okCount) end
  for bucket, c in pairs(buckets) do redis.call('HINCRBY', KEYS[2], 'b' .. bucket, c) end
end
return out
