-- Creates a delivery's pending record unless it exists. Returns 1 when the delivery still needs
-- its job (new, or pending: a publish that stopped half way), 0 when it is delivered or failed.
-- KEYS[1] record hash   KEYS[2] pending zset   KEYS[3] endpoint zset   KEYS[4] all zset
-- ARGV: ttlSeconds, createdAt, then field/value pairs
local status = redis.call('HGET', KEYS[1], 'status')
if status then
  if status == 'pending' then return 1 end
  return 0
end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
local createdAt = tonumber(ARGV[2])
local id = redis.call('HGET', KEYS[1], 'id')
redis.call('ZADD', KEYS[2], createdAt, id)
redis.call('ZADD', KEYS[3], createdAt, id)
redis.call('ZADD', KEYS[4], createdAt, id)
return 1
