-- Stores each event of a turn's publishes, first writer wins (publish.ts): SET key value PX ttl
-- NX for each key, with ARGV[1] the ttl in ms and ARGV[1 + i] the value of KEYS[i]. Answers 1
-- (stored now) or 0 (already there) per key, in order.
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('SET', key, ARGV[1 + i], 'PX', ARGV[1], 'NX') and 1 or 0
end
return out
