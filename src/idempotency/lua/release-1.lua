-- Gives KEYS[1] up (the work failed) when the owner ARGV[1] still holds it. Replies 1 or 0.
if redis.call('GET', KEYS[1]) == 'p' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
