--[[
  admit: a chunk of newly accepted jobs (rows already inserted) enters the shard.
  ARGV[10]: the mode, 'hold' (below) or 'at-once': release the jobs that would be released at once and leave
  the others out of the shard altogether (neither held nor delayed; the caller admits them again in 'hold'
  mode). A submitter probes with 'at-once' while its row is still being inserted (queue/submit-job.ts): a
  held job's row must exist before any release can pop it, a job released at once is added by the caller.
  ARGV[11…], 7 per job: id, customer, weight, lane score (priority·2^32 + seq), due time (ms; 0: not
  delayed), hints (JSON text, '' for none), jobs it stands for (1; more for a bundle held whole, which is
  estimated, counted against its customer's cap and charged as that many jobs).
  A job is released at once when its customer has no lane here, the window has room (or the customer has
  nothing in flight here: a customer's first job never waits for a full window to drain, so a window held by
  another customer's long bundles costs it nothing) and the customer is under its cap and not paused; else it
  is held in its lane. A delayed job waits in `delayed` until due (release
  promotes it into its lane), so a delay cannot bypass fair sharing. Admitting a job twice is a no-op when it is
  in flight, delayed, held with a priority, or held among the newest entries of its lane's list (a chunk sent
  again; the list is not searched further: a job held twice would be released twice, and the second release
  finds its row no longer queued, or BullMQ ignores the second add of its id).
  Returns the ids released now (the caller adds them to BullMQ).
]]
local atOnceOnly = ARGV[10] == 'at-once'
local jobs, ids, idsOf, customers = {}, {}, {}, {}
for i = 11, #ARGV, 7 do
  local job = {
    id = ARGV[i],
    customer = ARGV[i + 1],
    weight = ARGV[i + 2],
    score = ARGV[i + 3],
    dueAt = tonumber(ARGV[i + 4]),
    hints = ARGV[i + 5],
    jobs = math.max(1, tonumber(ARGV[i + 6]) or 1),
  }
  jobs[#jobs + 1] = job
  ids[#ids + 1] = job.id
  if not idsOf[job.customer] then
    idsOf[job.customer] = {}
    customers[#customers + 1] = job.customer
  end
  table.insert(idsOf[job.customer], job.id)
end

-- Already admitted (in flight, held or delayed): one look per list for the whole chunk.
local admitted = {}
local function mark(list, found)
  for i, id in ipairs(list) do
    if found[i] then admitted[id] = true end
  end
end
if #ids > 0 then
  mark(ids, select(2, bulk('HMGET', releasedKey, ids)))
  mark(ids, select(2, bulk('ZMSCORE', delayedKey, ids)))
  for _, customer in ipairs(customers) do
    local theirs = idsOf[customer]
    mark(theirs, select(2, bulk('ZMSCORE', rankedLane(customer), theirs)))
    local newest = {}
    for _, entry in ipairs(redis.call('LRANGE', lanePrefix .. customer, -2 * #theirs, -1)) do newest[entryOf(entry)] = true end
    for _, id in ipairs(theirs) do
      if newest[id] then admitted[id] = true end
    end
  end
end

local released = {}
for _, job in ipairs(jobs) do
  local id, customer = job.id, job.customer
  setWeight(customer, job.weight)
  local leftOut = false
  if admitted[id] then
    -- already admitted
  elseif job.dueAt <= now and not laneOf(customer) and (windowOpen() or countOf(customer) == 0) and underCap(customer)
    and not isPaused(customer) then
    local start = laneless(customer)
    advanceVmin(start)
    local est = costOf(customer) * job.jobs
    markReleased(id, customer, est, job.score, job.jobs)
    storeLaneless(customer, start + est / tonumber(job.weight))
    released[#released + 1] = id
  elseif atOnceOnly then
    -- the caller admits it again once its row is stored
    leftOut = true
  elseif job.dueAt > now then
    delay(id, customer, job.score, job.hints, job.dueAt)
  else
    hold(id, customer, job.score, job.hints, job.jobs)
  end
  if not leftOut then admitted[id] = true end
end
finish()
return released
