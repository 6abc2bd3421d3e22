-- Whether each key exists (publish.ts: whether each event of a turn's publishes is still kept):
-- 1 or 0 per key, in order. EXISTS of several keys answers only their count.
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('EXISTS', key) end
return out
