-- Parks one event and keeps the parked list bounded, in one call.
-- KEYS[1] parked entries (hash: parkedId -> entry JSON)  KEYS[2] parked index (zset: parkedId by parkedAt)
-- ARGV: parkedId, entryJson, now, retentionMs, maxEntries
-- Entries older than the retention are removed; beyond maxEntries the oldest are. Both keys expire
-- a retention after the last park, so a list nobody parks into again goes away by itself.
-- Returns the ids removed for the cap (the caller counts and logs them as dropped).
local now, retention, max = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function drop(ids)
  -- unpack() is bounded by Lua's stack: remove in slices.
  for i = 1, #ids, 500 do
    local slice = { unpack(ids, i, math.min(i + 499, #ids)) }
    redis.call('HDEL', KEYS[1], unpack(slice))
    redis.call('ZREM', KEYS[2], unpack(slice))
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
drop(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - retention)))
local n = redis.call('ZCARD', KEYS[2])
local over = {}
if n > max then
  over = redis.call('ZRANGE', KEYS[2], 0, n - max - 1)
  drop(over)
end
redis.call('PEXPIRE', KEYS[1], retention)
redis.call('PEXPIRE', KEYS[2], retention)
return over
