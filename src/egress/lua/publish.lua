-- Stores an event and its pending delivery records, for every matching endpoint, in one call.
-- Called with a variable number of keys (3 + 3 per endpoint):
-- KEYS[1] event  KEYS[2] pending zset  KEYS[3] all zset; per endpoint: disabled marker, record hash, endpoint zset
-- ARGV: eventJson, retentionMs, ttlSeconds, createdAt, eventId, eventType; per endpoint: deliveryId, endpointName
-- Returns one flag per endpoint: 0 disabled (no delivery), 1 the delivery needs its job (new, or
-- pending after a publish that stopped half way), 2 the delivery already ended (a repeat).
-- The event is stored first-writer-wins (NX): two replicas publishing one broadcast keep one copy.
local retention, ttl, createdAt = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', retention, 'NX')
local out = {}
local n = (#KEYS - 3) / 3
for i = 1, n do
  local disabledKey, recordKey, endpointKey = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local id, endpoint = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if redis.call('EXISTS', disabledKey) == 1 then
    out[i] = 0
  else
    local status = redis.call('HGET', recordKey, 'status')
    if status == 'pending' then
      out[i] = 1
    elseif status then
      out[i] = 2
    else
      redis.call('HSET', recordKey, 'id', id, 'eventId', ARGV[5], 'eventType', ARGV[6], 'endpoint', endpoint,
        'createdAt', createdAt, 'status', 'pending', 'attempts', 0, 'updatedAt', createdAt)
      redis.call('EXPIRE', recordKey, ttl)
      redis.call('ZADD', KEYS[2], createdAt, id)
      redis.call('ZADD', endpointKey, createdAt, id)
      redis.call('ZADD', KEYS[3], createdAt, id)
      out[i] = 1
    end
  end
end
return out
