-- Appends one attempt to a delivery's log and moves the delivery between the status indexes, in
-- one round trip. Index entries older than the retention are trimmed as we go.
-- KEYS[1] record hash  KEYS[2] attempts list  KEYS[3] endpoint zset  KEYS[4] all zset
-- KEYS[5] status prefix (…deliveries:status:; the three status keys are built from it)
-- ARGV: id, attemptJson, status, now, ttlSeconds, retentionMs, attempts, lastStatus, lastError, nextAttemptAt
local id, now, ttl = ARGV[1], tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'attempts', ARGV[7], 'updatedAt', ARGV[4],
  'lastStatus', ARGV[8], 'lastError', ARGV[9], 'nextAttemptAt', ARGV[10])
redis.call('EXPIRE', KEYS[1], ttl)
local horizon = now - tonumber(ARGV[6])
for _, s in ipairs({ 'pending', 'delivered', 'failed' }) do
  local key = KEYS[5] .. s
  if s == ARGV[3] then redis.call('ZADD', key, now, id) else redis.call('ZREM', key, id) end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', horizon)
end
for _, key in ipairs({ KEYS[3], KEYS[4] }) do
  redis.call('ZADD', key, now, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', horizon)
end
return 1
