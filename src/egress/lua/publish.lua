-- Stores an event and its pending delivery records, for every matching endpoint, in one call.
-- Called with a variable number of keys (1 + 4 per endpoint):
-- KEYS[1] event; per endpoint: state hash, record hash, endpoint "all" index, endpoint "pending" index
-- ARGV: eventJson, retentionMs, ttlSeconds, createdAt, eventId, eventType, repair (1|0),
--       eventIdJson ('' unless the id has an unpaired surrogate, which Redis's UTF-8 cannot keep);
--       per endpoint: deliveryId, endpointName
-- Returns { isNew, flag per endpoint... }: isNew 1 when this call stored the event, 0 when an event
-- with this id is still kept (a repeat: the publish answers duplicate). Flags: 0 disabled or not
-- delivered (no job), 1 the delivery needs its job (new, or pending after a publish whose job was
-- not added: adding it again is a no-op in BullMQ), 2 the delivery already ended.
-- The event is stored first-writer-wins (NX): two replicas publishing one broadcast keep one copy,
-- and of two concurrent publishes of one id exactly one is new. A repeat creates no new delivery,
-- except with `repair` (an operator replaying a parked event): then a missing record is created
-- as for a new event, since a publish that failed half way may have stored the event alone.
-- Everything is read before anything is written, so a key that refuses a read (a wrong type)
-- fails the call with nothing stored.
local ttl, createdAt, repair = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[7] == '1'
local n = (#KEYS - 1) / 4
local disabled, status = {}, {}
for i = 1, n do
  disabled[i] = redis.call('HEXISTS', KEYS[4 * i - 2], 'disabled') == 1
  status[i] = redis.call('HGET', KEYS[4 * i - 1], 'status')
end
local isNew = redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]), 'NX') and 1 or 0
local out = { isNew }
for i = 1, n do
  local recordKey, allKey, pendingKey = KEYS[4 * i - 1], KEYS[4 * i], KEYS[4 * i + 1]
  local id, endpoint = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  if disabled[i] then
    out[i + 1] = 0
  elseif status[i] == 'pending' then
    out[i + 1] = 1
  elseif status[i] then
    out[i + 1] = 2
  elseif isNew == 0 and not repair then
    out[i + 1] = 0
  else
    redis.call('HSET', recordKey, 'id', id, 'eventId', ARGV[5], 'eventType', ARGV[6], 'endpoint', endpoint,
      'createdAt', createdAt, 'status', 'pending', 'attempts', 0, 'updatedAt', createdAt)
    if ARGV[8] ~= '' then redis.call('HSET', recordKey, 'eventIdJson', ARGV[8]) end
    redis.call('EXPIRE', recordKey, ttl)
    redis.call('ZADD', allKey, createdAt, id)
    redis.call('ZADD', pendingKey, createdAt, id)
    out[i + 1] = 1
  end
end
return out
