-- Moves one key of the layout before hash tags (KEYS[1]) to its name now (KEYS[2]), in one step,
-- so replicas starting together never move or merge a key twice (egress/migrate-layout.ts).
-- ARGV[1], what to keep when both exist (the service already wrote the new name):
--   keep      the new key as it is            zset      the union, the later score of a member
--   counters  the sums of each field         fields    the new key's fields, plus the old key's others
--   disabled  the new key, plus the old one's `disabled` marker (an operator's or a 410's)
--   list      the new list, then the old one's items, trimmed to ARGV[2] items
-- The old key is deleted once merged; the new key keeps its expiry. Returns 0 when there was no
-- old key, 1 when it was renamed, 2 when it was merged into the new one.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('RENAMENX', KEYS[1], KEYS[2]) == 1 then return 1 end
local how = ARGV[1]
if how == 'zset' then
  local ttl = redis.call('PTTL', KEYS[2])
  redis.call('ZUNIONSTORE', KEYS[2], 2, KEYS[2], KEYS[1], 'AGGREGATE', 'MAX')
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
elseif how == 'counters' or how == 'fields' then
  local h = redis.call('HGETALL', KEYS[1])
  for i = 1, #h, 2 do
    if how == 'counters' then redis.call('HINCRBY', KEYS[2], h[i], h[i + 1]) else redis.call('HSETNX', KEYS[2], h[i], h[i + 1]) end
  end
elseif how == 'disabled' then
  local d = redis.call('HGET', KEYS[1], 'disabled')
  if d then redis.call('HSETNX', KEYS[2], 'disabled', d) end
elseif how == 'list' then
  local max = tonumber(ARGV[2])
  local items = redis.call('LRANGE', KEYS[1], 0, max - 1)
  if #items > 0 then
    redis.call('RPUSH', KEYS[2], unpack(items))
    redis.call('LTRIM', KEYS[2], 0, max - 1)
  end
end
redis.call('DEL', KEYS[1])
return 2
