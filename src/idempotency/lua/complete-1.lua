-- Stores the answer ARGV[2] on KEYS[1] for ARGV[3] ms when the owner ARGV[1] still holds the
-- lease, or when the key is vacant (the lease ran out and nobody claimed it since). Replies 1
-- when stored, 0 when another request holds or answered the key.
local v = redis.call('GET', KEYS[1])
local kind = v and string.sub(v, 1, 1)
if v == 'p' .. ARGV[1] or (kind ~= 'p' and kind ~= 'd') then
  redis.call('SET', KEYS[1], 'd' .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
