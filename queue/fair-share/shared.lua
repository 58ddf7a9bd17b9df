--[[
  Fair sharing of one queue shard: the prelude every fair-share script starts with (fair-share.ts
  concatenates it before each script body). Design: docs/design/queues-and-storage.md §2.

  Every script takes the same KEYS. All of them carry the shard's hash tag (`chrysalis:{invoke-3}:fair:…`),
  so they hash to one slot and a script touches them atomically, on a cluster too:
    KEYS[1]  lanes     zset  customer → virtual time (vt) of each backlogged customer
    KEYS[2]  lane:     key prefix of each customer's lane, built here from it: `lane:<customer>` (list of
                       its held jobs without a priority, in admission order) and `lane:<customer>:p` (zset of
                       its held jobs with one, score priority·2^32 + seq). The list is what a flood of held
                       jobs costs Redis, ~40 bytes a job (a zset entry is ~150); an entry is the job's id, or
                       the id followed by its packed hint flags (`!mn…`, fair-share.ts `packHints`), or for an
                       entry that stands for n > 1 jobs (a bundle held whole) the id, `*` and n. It is
                       declared as a key so that a cluster routes the script by it; it has the shard's tag,
                       so every lane key built from it is in the same slot.
    KEYS[3]  inflight  zset  released job id → release time (ms)
    KEYS[4]  released  hash  released job id → "<estimated ms>|<customer>|<lane score>", then "|<bundle id>"
                             (the BullMQ job carrying it with others, queue/bundles.ts, when release named
                             one; may be empty) and "|<jobs>" (the jobs an entry stands for, when more than 1)
    KEYS[5]  cost      hash  customer → estimated worker ms per job (EWMA of measured work)
    KEYS[6]  meta      hash  vmin (the shard's virtual time), work (estimated ms released and unfinished),
                             `pass:<customer>`: the sweeper pass that last rebuilt the customer's lane (relane),
                             `debt:<customer>`: what clamped corrections of its lane still owe (`charge`)
    KEYS[7]  delayed   zset  job id → due time (ms)
    KEYS[8]  info      hash  job id → hints of a held job that are not flags a list entry carries (JSON), or
                             {c = customer, s = lane score, h = hints} of a delayed job (JSON)
    KEYS[9]  vt        hash  customer → vt of a customer without a lane (only while above vmin)
    KEYS[10] weight    hash  customer → weight (tier weight, FAIR_WEIGHTS)
    KEYS[11] count     hash  customer → released, unfinished jobs (a bundle entry's members each count)
    KEYS[12] job:      key prefix of BullMQ's job hashes (`<prefix>:<queue>:`): `job:<id>`. Declared as a
                       key for the same reason as KEYS[2]; the queue's tag keeps it in this slot.
    KEYS[13] paused    set   customers an admin paused (a per-shard copy of `customers.paused_at`): their
                             held jobs stay in their lanes, none is released

  ARGV[1..9], every script: now (ms), window (ms of estimated work), minimum jobs in flight, most released
  jobs per customer (0: no cap), default cost (ms), EWMA factor, most entries moved per call, grace (ms),
  most jobs in flight (0: no cap). The script's own arguments start at ARGV[10].

  Cost: a call reads each customer's values (weight, cost, count, own vt, paused) at most once and writes
  them once at its end (`finish`), and touches the per-job keys (lanes, inflight, released, info, delayed)
  with one variadic command per list, not one per job: a chunk of a thousand jobs costs a few dozen
  commands, not thousands (a script runs atomically, so nothing else changes the state meanwhile).
]]
local now = tonumber(ARGV[1])
local windowMs = tonumber(ARGV[2])
local minInflight = tonumber(ARGV[3])
local maxPerCustomer = tonumber(ARGV[4])
local defaultCost = tonumber(ARGV[5])
local alpha = tonumber(ARGV[6])
local maxPerCall = tonumber(ARGV[7])
local graceMs = tonumber(ARGV[8])
local maxInflight = tonumber(ARGV[9])

local lanesKey, lanePrefix, inflightKey, releasedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local costKey, metaKey, delayedKey, infoKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local vtKey, weightKey, countKey, jobPrefix = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local pausedKey = KEYS[13]

local meta = redis.call('HMGET', metaKey, 'vmin', 'work')
local vmin = tonumber(meta[1]) or 0
local work = tonumber(meta[2]) or 0

-- A variadic command takes a list at most this many entries at a time (Lua's unpack stops near 8,000 values).
local slice = 1000

-- Runs `command key …list` over `list` in slices of `slice` entries of `width` values each. Returns the
-- sum of integer replies and the concatenation of list replies (a missing value is false, as in a reply).
local function bulk(command, key, list, width)
  local step = slice * (width or 1)
  local sum, all = 0, {}
  for i = 1, #list, step do
    local reply = redis.call(command, key, unpack(list, i, math.min(i + step - 1, #list)))
    if type(reply) == 'table' then
      for j = 1, #reply do all[#all + 1] = reply[j] end
    else
      sum = sum + reply
    end
  end
  return sum, all
end

-- Released, unfinished jobs of the shard (nil: not read yet; `markReleased` and `unmarkReleased` keep it).
local inflightCount

-- Each customer's values, read once per call and written back once by `finish`, in first-seen order.
local people, peopleOrder = {}, {}
local function who(customer)
  local s = people[customer]
  if not s then
    s = {}
    people[customer] = s
    peopleOrder[#peopleOrder + 1] = customer
  end
  return s
end

local function weightOf(customer)
  local s = who(customer)
  if s.weight == nil then s.weight = tonumber(redis.call('HGET', weightKey, customer)) or 1 end
  return s.weight
end

-- Stores a customer's weight (admit, relane).
local function setWeight(customer, weight)
  local s = who(customer)
  s.weight = tonumber(weight) or 1
  s.weightText = weight
end

-- A customer's estimated worker ms per job (its EWMA, or the default before any was measured).
local function costOf(customer)
  local s = who(customer)
  if s.cost == nil then s.cost = tonumber(redis.call('HGET', costKey, customer)) or false end
  return s.cost or defaultCost
end

-- Folds a measurement into a customer's cost EWMA.
local function measure(customer, measured)
  local s = who(customer)
  costOf(customer)
  if s.cost then s.cost = s.cost + alpha * (measured - s.cost) else s.cost = measured end
  s.costDirty = true
end

local function countOf(customer)
  local s = who(customer)
  if s.count == nil then s.count = tonumber(redis.call('HGET', countKey, customer)) or 0 end
  return s.count
end

local function addCount(customer, n)
  local s = who(customer)
  s.count = countOf(customer) + n
  s.countDirty = true
end

local function isPaused(customer)
  local s = who(customer)
  if s.paused == nil then s.paused = redis.call('SISMEMBER', pausedKey, customer) == 1 end
  return s.paused
end

local function underCap(customer)
  return maxPerCustomer <= 0 or countOf(customer) < maxPerCustomer
end

-- vt of a customer without a lane: its own while above vmin, else vmin.
local function laneless(customer)
  local s = who(customer)
  if s.vt == nil then s.vt = tonumber(redis.call('HGET', vtKey, customer)) or false end
  if s.vt and s.vt > vmin then return s.vt end
  return vmin
end

-- Kept only while above vmin (`finish` compares with the final vmin, which only grows).
local function storeLaneless(customer, vt)
  local s = who(customer)
  s.vt = vt
  s.vtDirty = true
end

-- The smallest vt in `lanes` (false: none), read once; joins keep it, other lane writes forget it.
local lanesHead
local function headOfLanes()
  if lanesHead == nil then
    local head = redis.call('ZRANGE', lanesKey, 0, 0, 'WITHSCORES')
    lanesHead = tonumber(head[2]) or false
  end
  return lanesHead
end

-- A customer's vt in `lanes`, false when it has no lane.
local function laneOf(customer)
  local s = who(customer)
  if s.lane == nil then s.lane = tonumber(redis.call('ZSCORE', lanesKey, customer)) or false end
  return s.lane
end

-- The most a customer's lane may lead the lowest other lane: one window of that lane's work at its weight
-- (nil when no other customer waits). A rejoining customer's vt is clamped to it, as Linux's EEVDF clamps a
-- waking task's lag, and so are the measured corrections of a lane, the rest left as its debt (`charge`): a
-- shard keeps its own ledger, and one job measured far above its estimate (a cold compile on a busy machine:
-- 15 ms for `x + 1`, a starter's weight 1 against an enterprise's 16) otherwise put a customer's next job
-- behind that shard's whole flood. The estimate charged at each release is never clamped, and the debt is paid
-- with it, so a customer that stays backlogged keeps its weight.
local function leadLimit(customer)
  local low = redis.call('ZRANGE', lanesKey, 0, 1, 'WITHSCORES')
  for i = 1, #low, 2 do
    if low[i] ~= customer then return tonumber(low[i + 1]) + windowMs / weightOf(low[i]) end
  end
  return nil
end

-- A customer joins `lanes` at max(own vt, vmin), at most `leadLimit` ahead; its own vt is then its lane's.
local function joinLanes(customer)
  local vt = laneless(customer)
  local limit = vt > vmin and leadLimit(customer)
  if limit and vt > limit then vt = math.max(limit, vmin) end
  redis.call('ZADD', lanesKey, vt, customer)
  who(customer).lane = vt
  storeLaneless(customer, false)
  if lanesHead ~= nil then lanesHead = (lanesHead and math.min(lanesHead, vt)) or vt end
end

local function inflightNow()
  if inflightCount == nil then inflightCount = redis.call('ZCARD', inflightKey) end
  return inflightCount
end

-- The shard's virtual time only moves forward, and never past a backlogged lane: a customer that joins
-- starts at vmin, so an idle customer banks no credit and one that used idle capacity owes none.
-- `isHead`: `start` is the smallest vt of the lanes still in play (release knows it), so the lanes need no look.
local function advanceVmin(start, isHead)
  if not isHead then
    local head = headOfLanes()
    if head and head < start then start = head end
  end
  if start > vmin then vmin = start end
end

-- What a lane's clamped corrections still owe (vt: worker ms / weight), paid at its customer's next release.
local function debtOf(customer)
  local s = who(customer)
  if s.debt == nil then s.debt = tonumber(redis.call('HGET', metaKey, 'debt:' .. customer)) or 0 end
  return s.debt
end

local function setDebt(customer, debt)
  local s = who(customer)
  s.debt = debt
  s.debtDirty = true
end

-- The customer's debt, now paid: the caller adds it to its vt.
local function payDebt(customer)
  local debt = debtOf(customer)
  if debt ~= 0 then setDebt(customer, 0) end
  return debt
end

-- Adds `delta` (worker ms / weight) to a customer's vt, in its lane or outside. `measured`: a correction from
-- measured work, which moves a lane no further ahead than `leadLimit` (a lane already past it stays put); the
-- rest is its customer's debt, paid with its next release, so the next job goes soon and the work is still paid.
local function charge(customer, delta, measured)
  if delta == 0 then return end
  local lane = laneOf(customer)
  if lane and measured and delta > 0 then
    local limit = leadLimit(customer)
    if limit and lane + delta > limit then
      local allowed = math.max(limit - lane, 0)
      setDebt(customer, debtOf(customer) + delta - allowed)
      delta = allowed
    end
    if delta == 0 then return end
  end
  if lane then
    who(customer).lane = tonumber(redis.call('ZINCRBY', lanesKey, delta, customer))
    lanesHead = nil
  else
    storeLaneless(customer, laneless(customer) + delta)
  end
end

-- Room for one more job: below the window's estimated work and its count of jobs, or below the minimum.
-- The count matters for cheap jobs: an invoke's measured work can be microseconds, and a window of 50 ms
-- of them alone would put hundreds per shard into BullMQ, ahead of any other customer's next job.
local function windowOpen()
  local inflight = inflightNow()
  if inflight < minInflight then return true end
  return work < windowMs and (maxInflight <= 0 or inflight < maxInflight)
end

-- Jobs counted in flight by this call, written by `finish`: inflight (id, score pairs), released (id, record).
local inflightAdds, releasedAdds = {}, {}

-- Records an entry as in flight (`inflight`, `released`); the caller has counted it. `jobs`: how many jobs
-- it stands for (default 1).
local function recordReleased(id, customer, est, score, bundle, jobs)
  inflightAdds[#inflightAdds + 1] = now
  inflightAdds[#inflightAdds + 1] = id
  releasedAdds[#releasedAdds + 1] = id
  local record = est .. '|' .. customer .. '|' .. score
  if jobs and jobs > 1 then
    record = record .. '|' .. (bundle or '') .. '|' .. jobs
  elseif bundle and bundle ~= '' then
    record = record .. '|' .. bundle
  end
  releasedAdds[#releasedAdds + 1] = record
end

-- Counts an entry of `jobs` jobs as released (in flight) with estimate `est` for all of them (the caller charges it).
local function markReleased(id, customer, est, score, jobs)
  inflightNow()
  inflightCount = inflightCount + 1
  recordReleased(id, customer, est, score, '', jobs)
  addCount(customer, jobs)
  work = work + est
end

-- A `released` record: estimated ms, customer, lane score (0 in a record written before scores were kept),
-- bundle id ('' when none), jobs the entry stands for.
local function parseReleased(record)
  local values, start = {}, 1
  while true do
    local bar = string.find(record, '|', start, true)
    if not bar then
      values[#values + 1] = string.sub(record, start)
      break
    end
    values[#values + 1] = string.sub(record, start, bar - 1)
    start = bar + 1
  end
  return tonumber(values[1]), values[2], values[3] or '0', values[4] or '', tonumber(values[5]) or 1
end

-- Takes entries out of the in-flight accounting; returns id → { est, customer, score, jobs } of those that were in flight.
local function unmarkReleased(ids)
  local found = {}
  if #ids == 0 then return found end
  local _, records = bulk('HMGET', releasedKey, ids)
  local gone = {}
  for i, id in ipairs(ids) do
    local record = records[i]
    if record and not found[id] then
      local est, customer, score, _, jobs = parseReleased(record)
      found[id] = { est, customer, score, jobs }
      gone[#gone + 1] = id
      addCount(customer, -jobs)
      work = work - est
    end
  end
  if #gone > 0 then
    bulk('HDEL', releasedKey, gone)
    local removed = bulk('ZREM', inflightKey, gone)
    if inflightCount ~= nil then inflightCount = inflightCount - removed end
  end
  return found
end

-- Held and delayed jobs of this call, written by `flushHolds` / `finish`: list entries per customer, zset
-- entries (score, id pairs) per customer, info (id, text pairs), delayed (due, id pairs).
local listHolds, rankedHolds, holdOrder, infoAdds, delayedAdds = {}, {}, {}, {}, {}

-- A lane score of a job without a priority (priority·2^32 + seq, seq < 2^32): it waits in the lane's list.
local unranked = 4294967296

local function rankedLane(customer)
  return lanePrefix .. customer .. ':p'
end

-- Holds a job in its customer's lane; a customer without a lane joins `lanes` at max(own vt, vmin).
-- `hints`: packed (fair-share.ts `packHints`): flags ('!…') ride on a list entry, anything else waits in `info`.
-- `jobs`: how many jobs the entry stands for (a bundle held whole; default 1), written on a list entry as `*<n>`.
local function hold(id, customer, score, hints, jobs)
  if not listHolds[customer] then
    listHolds[customer], rankedHolds[customer] = {}, {}
    holdOrder[#holdOrder + 1] = customer
  end
  local flags = hints and string.byte(hints, 1) == 33 -- '!'
  if tonumber(score) < unranked then
    local list = listHolds[customer]
    if jobs and jobs > 1 then
      list[#list + 1] = id .. '*' .. jobs
    else
      list[#list + 1] = flags and (id .. hints) or id
    end
  else
    local ranked = rankedHolds[customer]
    ranked[#ranked + 1] = score
    ranked[#ranked + 1] = id
  end
  if hints and hints ~= '' and (not flags or tonumber(score) >= unranked) then
    infoAdds[#infoAdds + 1] = id
    infoAdds[#infoAdds + 1] = hints
  end
  if not laneOf(customer) then joinLanes(customer) end
end

-- Whether a lane entry is a bundle held whole (queue/bundles.ts `fairEntry`): one entry, many jobs; its
-- members' list waits in `info` as its hints.
local function isBundleEntry(id)
  return string.sub(id, 1, 7) == 'bundle-'
end

-- A list entry's job id, packed hints ('' for none) and the jobs it stands for.
local function entryOf(entry)
  local star = string.find(entry, '*', 1, true)
  if star then return string.sub(entry, 1, star - 1), '', tonumber(string.sub(entry, star + 1)) or 1 end
  local bang = string.find(entry, '!', 1, true)
  if not bang then return entry, '', 1 end
  return string.sub(entry, 1, bang - 1), string.sub(entry, bang), 1
end

-- Customers whose lanes emptied: a later sweeper pass finds their lanes empty again, not rebuilt (relane).
local function forgetPasses(customers)
  local fields = {}
  for i, customer in ipairs(customers) do fields[i] = 'pass:' .. customer end
  bulk('HDEL', metaKey, fields)
end

-- Held entries in a customer's lane (list and zset), and in its list alone.
local function laneSize(customer)
  local listed = redis.call('LLEN', lanePrefix .. customer)
  return listed + redis.call('ZCARD', rankedLane(customer)), listed
end

local function delay(id, customer, score, hints, dueAt)
  delayedAdds[#delayedAdds + 1] = dueAt
  delayedAdds[#delayedAdds + 1] = id
  infoAdds[#infoAdds + 1] = id
  infoAdds[#infoAdds + 1] = cjson.encode({ c = customer, s = score, h = hints })
end

-- Writes the held jobs gathered so far into their lanes (before anything reads the lanes' sizes).
local function flushHolds()
  for _, customer in ipairs(holdOrder) do
    if #listHolds[customer] > 0 then bulk('RPUSH', lanePrefix .. customer, listHolds[customer]) end
    if #rankedHolds[customer] > 0 then bulk('ZADD', rankedLane(customer), rankedHolds[customer], 2) end
  end
  listHolds, rankedHolds, holdOrder = {}, {}, {}
  if #infoAdds > 0 then bulk('HSET', infoKey, infoAdds, 2) end
  infoAdds = {}
end

-- Writes what the call gathered: held, delayed and released jobs, each customer's values, and meta.
local function finish()
  flushHolds()
  if #delayedAdds > 0 then bulk('ZADD', delayedKey, delayedAdds, 2) end
  if #inflightAdds > 0 then
    bulk('ZADD', inflightKey, inflightAdds, 2)
    bulk('HSET', releasedKey, releasedAdds, 2)
  end
  local weightSet, costSet, countSet, countDel, vtSet, vtDel, debtSet, debtDel = {}, {}, {}, {}, {}, {}, {}, {}
  for _, customer in ipairs(peopleOrder) do
    local s = people[customer]
    if s.weightText then
      weightSet[#weightSet + 1] = customer
      weightSet[#weightSet + 1] = s.weightText
    end
    if s.costDirty then
      costSet[#costSet + 1] = customer
      costSet[#costSet + 1] = tostring(s.cost)
    end
    if s.countDirty then
      if s.count > 0 then
        countSet[#countSet + 1] = customer
        countSet[#countSet + 1] = s.count
      else
        countDel[#countDel + 1] = customer
      end
    end
    if s.vtDirty then
      if s.vt and s.vt > vmin then
        vtSet[#vtSet + 1] = customer
        vtSet[#vtSet + 1] = tostring(s.vt)
      else
        vtDel[#vtDel + 1] = customer
      end
    end
    if s.debtDirty then
      if s.debt > 0 then
        debtSet[#debtSet + 1] = 'debt:' .. customer
        debtSet[#debtSet + 1] = tostring(s.debt)
      else
        debtDel[#debtDel + 1] = 'debt:' .. customer
      end
    end
  end
  if #debtSet > 0 then bulk('HSET', metaKey, debtSet, 2) end
  if #debtDel > 0 then bulk('HDEL', metaKey, debtDel) end
  if #weightSet > 0 then bulk('HSET', weightKey, weightSet, 2) end
  if #costSet > 0 then bulk('HSET', costKey, costSet, 2) end
  if #countSet > 0 then bulk('HSET', countKey, countSet, 2) end
  if #countDel > 0 then bulk('HDEL', countKey, countDel) end
  if #vtSet > 0 then bulk('HSET', vtKey, vtSet, 2) end
  if #vtDel > 0 then bulk('HDEL', vtKey, vtDel) end
  if work < 0.000001 or inflightNow() == 0 then work = 0 end
  redis.call('HSET', metaKey, 'vmin', tostring(vmin), 'work', tostring(work))
end
