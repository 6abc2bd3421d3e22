-- Whether a client is locked out: {failures in its window, ms until the window ends} (0, 0 when
-- it has none). KEYS[1]: the client's failure counter.
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n == 0 then return {0, 0} end
return {n, redis.call('PTTL', KEYS[1])}
