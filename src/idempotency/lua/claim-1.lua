-- Claims KEYS[1] for the owner token ARGV[1] for ARGV[2] ms, unless it is held or answered.
-- Values: "p<token>" while the owner works (a lease of seconds), "d<answer>" once answered
-- (kept for the whole window); any other value (a format before leases) counts as vacant.
-- Replies {1} won, {2, pttl} in progress, {3, answer} answered.
local v = redis.call('GET', KEYS[1])
local kind = v and string.sub(v, 1, 1)
if kind == 'p' then
  return {2, redis.call('PTTL', KEYS[1])}
end
if kind == 'd' then
  return {3, string.sub(v, 2)}
end
redis.call('SET', KEYS[1], 'p' .. ARGV[1], 'PX', ARGV[2])
return {1}
