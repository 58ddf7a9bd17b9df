--[[
  reconcile: the leader tick's repair of the in-flight accounting. A member of `inflight` released
  before the grace whose BullMQ job (`job:<id>`) is gone or finished (`finishedOn` set) is dropped:
  a worker that died between pop and add, a job removed by hand, a release call that was lost. Then
  the window's work and the per-customer counts are recomputed from `released`, so no drift lasts.
  No ARGV of its own. Returns the number of ids dropped.
]]
local dropped = 0
local stale = redis.call('ZRANGEBYSCORE', inflightKey, '-inf', now - graceMs, 'LIMIT', 0, maxPerCall)
for _, id in ipairs(stale) do
  local job = jobPrefix .. id
  if redis.call('EXISTS', job) == 0 or redis.call('HEXISTS', job, 'finishedOn') == 1 then
    unmarkReleased(id)
    dropped = dropped + 1
  end
end

-- Recount from `released` (the source of truth), dropping halves of entries a crash may have split.
local records = redis.call('HGETALL', releasedKey)
local counts = {}
work = 0
for i = 1, #records, 2 do
  local id, record = records[i], records[i + 1]
  if redis.call('ZSCORE', inflightKey, id) then
    local bar = string.find(record, '|', 1, true)
    local customer = string.sub(record, bar + 1)
    work = work + tonumber(string.sub(record, 1, bar - 1))
    counts[customer] = (counts[customer] or 0) + 1
  else
    redis.call('HDEL', releasedKey, id)
  end
end
redis.call('DEL', countKey)
for customer, n in pairs(counts) do
  redis.call('HSET', countKey, customer, n)
end
local orphans = {}
for _, id in ipairs(redis.call('ZRANGE', inflightKey, 0, -1)) do
  if redis.call('HEXISTS', releasedKey, id) == 0 then orphans[#orphans + 1] = id end
end
if #orphans > 0 then redis.call('ZREM', inflightKey, unpack(orphans)) end
saveMeta()
return dropped
