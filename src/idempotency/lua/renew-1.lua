-- Extends the lease on KEYS[1] to ARGV[2] ms, only for its owner ARGV[1]. Replies 1, or 0 when
-- the lease is not this owner's any more (expired, answered or taken by another request).
if redis.call('GET', KEYS[1]) == 'p' .. ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
