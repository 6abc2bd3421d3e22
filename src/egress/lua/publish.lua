-- Stores an event and its pending delivery records, for every matching endpoint, in one call.
-- Called with a variable number of keys (1 + 4 per endpoint):
-- KEYS[1] event; per endpoint: state hash, record hash, endpoint "all" index, endpoint "pending" index
-- ARGV: eventJson, retentionMs, ttlSeconds, createdAt, eventId, eventType; per endpoint: deliveryId, endpointName
-- Returns one flag per endpoint: 0 disabled (no delivery), 1 the delivery needs its job (new, or
-- pending after a publish that stopped half way), 2 the delivery already ended (a repeat).
-- The event is stored first-writer-wins (NX): two replicas publishing one broadcast keep one copy.
local ttl, createdAt = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]), 'NX')
local out = {}
for i = 1, (#KEYS - 1) / 4 do
  local stateKey, recordKey, allKey, pendingKey = KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i], KEYS[4 * i + 1]
  local id, endpoint = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if redis.call('HEXISTS', stateKey, 'disabled') == 1 then
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
      redis.call('ZADD', allKey, createdAt, id)
      redis.call('ZADD', pendingKey, createdAt, id)
      out[i] = 1
    end
  end
end
return out
