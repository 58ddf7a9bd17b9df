--[[
  reconcile: the leader tick's repair of the in-flight accounting. A member of `inflight` released
  before the grace whose BullMQ job (`job:<id>`, or when it has none the bundle its record names:
  queue/bundles.ts) is gone or finished (`finishedOn` set) is dropped:
  a worker that died between pop and add, a job removed by hand, a release call that was lost. One whose
  job is gone goes back into its lane with its estimate refunded (released again, it runs unless its row
  is no longer queued: a job that finished and was trimmed is then skipped); a bundle held whole does not (its
  members' list left with it), and the sweeper puts its members back into the lane one by one. Then the window's work and
  the per-customer counts are recomputed from `released`, so no drift lasts.
  No ARGV of its own. Returns the number of ids dropped.
]]
local stale = redis.call('ZRANGEBYSCORE', inflightKey, '-inf', now - graceMs, 'LIMIT', 0, maxPerCall)
local gone, neverAdded = {}, {}
local _, staleRecords = bulk('HMGET', releasedKey, stale)
for i, id in ipairs(stale) do
  local job = jobPrefix .. id
  local bundle = ''
  if staleRecords[i] then bundle = select(4, parseReleased(staleRecords[i])) end
  -- A bundle's member has no job of its own unless it was handed off to retry alone.
  if bundle ~= '' and redis.call('EXISTS', job) == 0 then job = jobPrefix .. bundle end
  if redis.call('EXISTS', job) == 0 then
    gone[#gone + 1] = id
    neverAdded[#neverAdded + 1] = id
  elseif redis.call('HEXISTS', job, 'finishedOn') == 1 then
    gone[#gone + 1] = id
  end
end
local wereInflight = unmarkReleased(gone)
for _, id in ipairs(neverAdded) do
  local record = wereInflight[id]
  if record then
    local est, customer, score = record[1], record[2], record[3]
    charge(customer, -est / weightOf(customer))
    -- A bundle entry's members list left with its release: the sweeper puts its members back one by one.
    if not isBundleEntry(id) then hold(id, customer, score, '') end
  end
end
flushHolds()

-- Recount from `released` (the source of truth), dropping halves of entries a crash may have split.
local records = redis.call('HGETALL', releasedKey)
local counts, countOrder = {}, {}
work = 0
local inflightIds = {}
for i = 1, #records, 2 do inflightIds[#inflightIds + 1] = records[i] end
local _, scores = bulk('ZMSCORE', inflightKey, inflightIds)
local split = {}
for i = 1, #records, 2 do
  local id, record = records[i], records[i + 1]
  if scores[(i + 1) / 2] then
    local est, customer, _, _, jobs = parseReleased(record)
    work = work + est
    if not counts[customer] then countOrder[#countOrder + 1] = customer end
    counts[customer] = (counts[customer] or 0) + jobs
  else
    split[#split + 1] = id
  end
end
if #split > 0 then bulk('HDEL', releasedKey, split) end
-- The recount replaces every count this call changed.
for _, s in pairs(people) do
  s.count, s.countDirty = nil, nil
end
redis.call('DEL', countKey)
for _, customer in ipairs(countOrder) do
  redis.call('HSET', countKey, customer, counts[customer])
end
local orphans = {}
local members = redis.call('ZRANGE', inflightKey, 0, -1)
local _, present = bulk('HMGET', releasedKey, members)
for i, id in ipairs(members) do
  if not present[i] then orphans[#orphans + 1] = id end
end
if #orphans > 0 then bulk('ZREM', inflightKey, orphans) end
inflightCount = nil
finish()
return #gone
