-- Creates one endpoint's pending delivery record for an event, unless it exists (publish.ts calls
-- it once per matching endpoint, before it stores the event itself).
-- KEYS (all with the endpoint's hash tag): endpoint state hash, record hash, the endpoint's "all"
-- index, its "pending" index.
-- ARGV: create (1|0), ttlSeconds, createdAt, eventId, eventType, deliveryId, endpointName,
--       eventIdJson ('' unless the id has an unpaired surrogate, which Redis's UTF-8 cannot keep).
-- Returns a flag: 0 the endpoint is disabled, or there is no record and `create` is 0 (the event
-- is a repeat: no new delivery); 1 the delivery needs its job (created now, or still pending
-- after a publish whose job was not added: adding it again is a no-op in BullMQ); 2 the delivery
-- already ended. The record is read before anything is written, so a key of the wrong type fails
-- the call with nothing stored.
if redis.call('HEXISTS', KEYS[1], 'disabled') == 1 then return 0 end
local status = redis.call('HGET', KEYS[2], 'status')
if status == 'pending' then return 1 end
if status then return 2 end
if ARGV[1] ~= '1' then return 0 end
local createdAt = tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'id', ARGV[6], 'eventId', ARGV[4], 'eventType', ARGV[5], 'endpoint', ARGV[7],
  'createdAt', createdAt, 'status', 'pending', 'attempts', 0, 'updatedAt', createdAt)
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], 'eventIdJson', ARGV[8]) end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
redis.call('ZADD', KEYS[3], createdAt, ARGV[6])
redis.call('ZADD', KEYS[4], createdAt, ARGV[6])
return 1
