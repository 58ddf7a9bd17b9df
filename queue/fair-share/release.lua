--[[
  release: jobs of this shard finished; charge them, then fill the window from the lanes.
  ARGV[10] a tag unique to this call ('' for no bundles), ARGV[11] most jobs a bundle carries (queue/bundles.ts).
  ARGV[12…], 4 per entry: id, customer, charged worker ms (fair-share.ts `chargeOf`: a base cost per job
  plus its measured work, capped; '' when the job did not run: its row was no longer releasable, so its
  slot is freed and its estimated charge refunded), jobs it ran (a bundle held whole: its members; else 1).
  1. Each finished entry leaves `inflight`; its customer's vt moves by (measured − estimated) / weight (the
     estimate was charged when it was released; a backlogged customer's lane moves no further ahead than
     shared.lua's `leadLimit`, the rest owed until its next release) and its cost EWMA takes the measurement
     per job.
  2. Delayed jobs that are due join their lanes.
  3. While the window has room (estimated work below the window, or fewer than the minimum jobs in
     flight): the next job of the lane with the smallest vt whose customer is under its cap and not paused
     is released, and its estimate charged to that vt with the customer's debt (start-time fair queueing):
     the customer's cost per job times the jobs the entry stands for (`*<n>` on a bundle's list entry). A
     paused customer's lane keeps up with vmin meanwhile, so it banks no credit for the pause.
     The choice runs on the lanes' vts in memory (read a page of lanes at a time, by rank) and each lane
     it takes from is popped once for all its jobs, so releasing a batch costs a few commands per lane.
  Returns { released, inflight, lanes }: released flat — id, customer, hints ('' for none), backlogged,
  bundle, id, … — backlogged '1' when its customer still has jobs held in its lane here, else '0' (fair-share.ts
  `ReleasedJob.backlogged`); bundle, with a tag, the BullMQ job to carry it when this call released more than one
  job of its customer (`bundle-<tag>-<customer>-<n>`, at most ARGV[11] a bundle; '' otherwise), kept in its
  `released` record so reconcile looks for that job; inflight the shard's released, unfinished jobs after the call; lanes its
  backlogged customers.
]]
local bundleTag, bundleSize = ARGV[10], tonumber(ARGV[11])
local finished, charges, charged = {}, {}, {}
for i = 12, #ARGV, 4 do
  finished[#finished + 1] = { id = ARGV[i], customer = ARGV[i + 1], measured = tonumber(ARGV[i + 2]), jobs = math.max(1, tonumber(ARGV[i + 3]) or 1) }
end
local ids = {}
for i, job in ipairs(finished) do ids[i] = job.id end
local records = unmarkReleased(ids)
for _, job in ipairs(finished) do
  local record = records[job.id]
  local est = record and record[1]
  local customer = job.customer
  local delta
  if job.measured then
    delta = (job.measured - (est or 0)) / weightOf(customer)
    measure(customer, job.measured / job.jobs)
  elseif est then
    delta = -est / weightOf(customer)
  end
  if delta then
    if not charges[customer] then charged[#charged + 1] = customer end
    charges[customer] = (charges[customer] or 0) + delta
  end
end
for _, customer in ipairs(charged) do charge(customer, charges[customer], true) end

local due = redis.call('ZRANGEBYSCORE', delayedKey, '-inf', now, 'LIMIT', 0, maxPerCall)
if #due > 0 then
  local _, entries = bulk('HMGET', infoKey, due)
  bulk('ZREM', delayedKey, due)
  bulk('HDEL', infoKey, due)
  for i, id in ipairs(due) do
    if entries[i] then
      local job = cjson.decode(entries[i])
      hold(id, job.c, job.s, job.h)
    end
  end
end
flushHolds()

-- The lanes in play, a page (by rank) at a time: lanes not read yet have a vt ≥ `boundary`.
local pageSize = 64
local lanes, read, boundary, exhausted = {}, 0, nil, false
local function readPage()
  local page = redis.call('ZRANGE', lanesKey, read, read + pageSize - 1, 'WITHSCORES')
  for i = 1, #page, 2 do
    local vt = tonumber(page[i + 1])
    lanes[#lanes + 1] = { customer = page[i], start = vt, vt = vt, take = 0, entries = {} }
  end
  read = read + #page / 2
  exhausted = #page < pageSize * 2
  if #page > 0 then boundary = tonumber(page[#page]) end
end

-- Jobs the lane's next entry stands for. Its list's entries are read ahead in pages that double (8, 16, …),
-- and the pop below takes these same entries (an LTRIM, not a second read); an entry of its zset (a job with
-- a priority) is one job.
local function nextJobs(lane)
  local at = lane.take + 1
  if at > lane.listSize then return 1 end
  local entries = lane.entries
  if at > #entries then
    for _, entry in ipairs(redis.call('LRANGE', lanePrefix .. lane.customer, #entries, 2 * #entries + 7)) do
      entries[#entries + 1] = entry
    end
  end
  return entries[at] and select(3, entryOf(entries[at])) or 1
end

local picks = {}
if windowOpen() then readPage() end
while #picks < maxPerCall and #lanes > 0 and windowOpen() do
  -- The lane with the smallest vt (ties by customer, as the zset orders them).
  local best
  for _, lane in ipairs(lanes) do
    if not lane.out and (not best or lane.vt < best.vt or (lane.vt == best.vt and lane.customer < best.customer)) then best = lane end
  end
  if not exhausted and (not best or best.vt >= boundary) then
    readPage()
  elseif not best then
    break
  else
    local customer = best.customer
    if isPaused(customer) then
      best.out = 'paused'
    elseif not underCap(customer) then
      -- Out of the way until the end of this call, so the next lane gets the room.
      best.out = 'capped'
    else
      if best.size == nil then best.size, best.listSize = laneSize(customer) end
      if best.size == 0 then
        -- A lane lost its key (a flush); the sweeper re-lanes its jobs.
        best.out = 'empty'
      else
        advanceVmin(best.vt, true)
        local jobs = nextJobs(best)
        local est = costOf(customer) * jobs
        best.take = best.take + 1
        best.vt = best.vt + est / weightOf(customer) + payDebt(customer)
        -- Counted now (the window and the cap see it); its id is known once the lane is popped below.
        addCount(customer, jobs)
        work = work + est
        inflightCount = inflightNow() + 1
        picks[#picks + 1] = { lane = best, est = est, jobs = jobs }
        if best.take == best.size then best.out = 'empty' end
      end
    end
  end
end

-- Pop each lane once (its list first: jobs without a priority go first, as in BullMQ), then hand the ids
-- out in the order they were chosen.
local popped, lookUp = {}, {}
local lanesSet, lanesDel = {}, {}
for _, lane in ipairs(lanes) do
  if lane.take > 0 then
    local list = {}
    local fromList = math.min(lane.take, lane.listSize, #lane.entries)
    if fromList > 0 then redis.call('LTRIM', lanePrefix .. lane.customer, fromList, -1) end
    for i = 1, fromList do
      local entry = lane.entries[i]
      local id, hints = entryOf(entry)
      list[#list + 1] = { id = id, hints = hints, score = '0' }
      if hints == '' then lookUp[#lookUp + 1] = id end
    end
    if #list < lane.take then
      local ranked = redis.call('ZPOPMIN', rankedLane(lane.customer), lane.take - #list)
      for i = 1, #ranked, 2 do
        list[#list + 1] = { id = ranked[i], hints = '', score = ranked[i + 1] }
        lookUp[#lookUp + 1] = ranked[i]
      end
    end
    popped[lane] = { list = list, next = 1 }
  end
  local vt = lane.vt
  if lane.out == 'paused' then vt = math.max(lane.start, vmin) end
  if lane.out == 'empty' then
    lanesDel[#lanesDel + 1] = lane.customer
    who(lane.customer).lane = false
    storeLaneless(lane.customer, vt)
  elseif vt ~= lane.start then
    lanesSet[#lanesSet + 1] = vt
    lanesSet[#lanesSet + 1] = lane.customer
    who(lane.customer).lane = vt
  end
end
if #lanesSet > 0 then bulk('ZADD', lanesKey, lanesSet, 2) end
if #lanesDel > 0 then
  bulk('ZREM', lanesKey, lanesDel)
  forgetPasses(lanesDel)
end

local hintsOf = {}
if #lookUp > 0 then
  local _, hints = bulk('HMGET', infoKey, lookUp)
  local withHints = {}
  for i, id in ipairs(lookUp) do
    if hints[i] then
      hintsOf[id] = hints[i]
      withHints[#withHints + 1] = id
    end
  end
  if #withHints > 0 then bulk('HDEL', infoKey, withHints) end
end

local out = {}
for _, pick in ipairs(picks) do
  local lane = pick.lane
  local taken = popped[lane]
  local entry = taken.list[taken.next]
  if entry then
    local id = entry.id
    local bundle = ''
    -- An entry that is a bundle already (`bundle-…`, held whole: queue/bundles.ts `fairEntry`) travels as itself.
    if bundleTag ~= '' and #taken.list > 1 and not isBundleEntry(id) then
      bundle = 'bundle-' .. bundleTag .. '-' .. lane.customer .. '-' .. math.floor((taken.next - 1) / bundleSize)
    end
    -- Counted above: only the records remain.
    recordReleased(id, lane.customer, pick.est, entry.score, bundle, pick.jobs)
    out[#out + 1] = id
    out[#out + 1] = lane.customer
    out[#out + 1] = hintsOf[id] or entry.hints
    out[#out + 1] = (taken.next == #taken.list and lane.out == 'empty') and '0' or '1'
    out[#out + 1] = bundle
  end
  taken.next = taken.next + 1
end
finish()
return { out, inflightNow(), redis.call('ZCARD', lanesKey) }
