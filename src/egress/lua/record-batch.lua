-- Creates one endpoint's pending delivery records for a batch of events, each unless it exists
-- (publish.ts asks for one per matching endpoint, before it stores the event itself; scripts.ts
-- gathers the ones asked for in one event-loop turn).
-- KEYS (all with the endpoint's hash tag): KEYS[1] endpoint state hash, KEYS[2] the endpoint's
-- "all" index, KEYS[3] its "pending" index, then one record hash per event.
-- ARGV[1..2]: ttlSeconds, endpointName; then per record i (from 0), ARGV[3+6i ..]: create (1|0),
--   createdAt, eventId, eventType, deliveryId, eventIdJson ('' unless the id has an unpaired
--   surrogate, which Redis's UTF-8 cannot keep).
-- Returns a flag per record: 0 the endpoint is disabled, or there is no record and `create` is 0
-- (the event is a repeat: no new delivery); 1 the delivery needs its job (created now, or still
-- pending after a publish whose job was not added: adding it again is a no-op in BullMQ); 2 the
-- delivery already ended; or { '!', message } when the key is of another type: each record is
-- read before anything of it is written, so that one fails alone with nothing stored.
local n = #KEYS - 3
local out = {}
if redis.call('HEXISTS', KEYS[1], 'disabled') == 1 then
  for i = 1, n do out[i] = 0 end
  return out
end
local ttl = tonumber(ARGV[1])
local all, pending = {}, {}
for i = 0, n - 1 do
  local a = 3 + 6 * i
  local rk = KEYS[4 + i]
  local status = redis.pcall('HGET', rk, 'status')
  if type(status) == 'table' and status.err then
    out[i + 1] = { '!', status.err }
  elseif status == 'pending' then
    out[i + 1] = 1
  elseif status then
    out[i + 1] = 2
  elseif ARGV[a] ~= '1' then
    out[i + 1] = 0
  else
    local createdAt = tonumber(ARGV[a + 1])
    redis.call('HSET', rk, 'id', ARGV[a + 4], 'eventId', ARGV[a + 2], 'eventType', ARGV[a + 3], 'endpoint', ARGV[2],
      'createdAt', createdAt, 'status', 'pending', 'attempts', 0, 'updatedAt', createdAt)
    if ARGV[a + 5] ~= '' then redis.call('HSET', rk, 'eventIdJson', ARGV[a + 5]) end
    redis.call('EXPIRE', rk, ttl)
    all[#all + 1] = createdAt
    all[#all + 1] = ARGV[a + 4]
    out[i + 1] = 1
  end
end
-- Both indexes in one ZADD each (at most a few thousand members: unpack's limit is far above).
if #all > 0 then
  redis.call('ZADD', KEYS[2], unpack(all))
  redis.call('ZADD', KEYS[3], unpack(all))
end
return out
