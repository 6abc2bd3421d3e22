-- Stores an event and its pending delivery records, for every matching endpoint, in one call.
-- Called with a variable number of keys (1 + 4 per endpoint):
-- KEYS[1] event; per endpoint: state hash, record hash, endpoint "all" index, endpoint "pending" index
-- ARGV: eventJson, retentionMs, ttlSeconds, createdAt, eventId, eventType; per endpoint: deliveryId, endpointName
-- Returns { isNew, flag per endpoint... }: isNew 1 when this call stored the event, 0 when an event
-- with this id is still kept (a repeat: the publish answers duplicate). Flags: 0 disabled or not
-- delivered (no job), 1 the delivery needs its job (new, or pending after a publish whose job was
-- not added: adding it again is a no-op in BullMQ), 2 the delivery already ended.
-- The event is stored first-writer-wins (NX): two replicas publishing one broadcast keep one copy,
-- and of two concurrent publishes of one id exactly one is new. A repeat creates no new delivery.
local ttl, createdAt = tonumber(ARGV[3]), tonumber(ARGV[4])
local isNew = redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') and 1 or 0
local out = { isNew }
for i = 1, (#KEYS - 1) / 4 do
  local stateKey, recordKey, allKey, pendingKey = KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i], KEYS[4 * i + 1]
  local id, endpoint = ARGV[5 + 2 * i], ARGV[6 + 2 * i]
  if redis.call('HEXISTS', stateKey, 'disabled') == 1 then
    out[i + 1] = 0
  else
    local status = redis.call('HGET', recordKey, 'status')
    if status == 'pending' then
      out[i + 1] = 1
    elseif status then
      out[i + 1] = 2
    elseif isNew == 0 then
      out[i + 1] = 0
    else
      redis.call('HSET', recordKey, 'id', id, 'eventId', ARGV[5], 'eventType', ARGV[6], 'endpoint', endpoint,
        'createdAt', createdAt, 'status', 'pending', 'attempts', 0, 'updatedAt', createdAt)
      redis.call('EXPIRE', recordKey, ttl)
      redis.call('ZADD', allKey, createdAt, id)
      redis.call('ZADD', pendingKey, createdAt, id)
      out[i + 1] = 1
    end
  end
end
return out
