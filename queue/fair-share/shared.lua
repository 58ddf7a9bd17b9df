--[[
  Fair sharing of one queue shard: the prelude every fair-share script starts with (fair-share.ts
  concatenates it before each script body). Design: docs/design/queues-and-storage.md §2.

  Every script takes the same KEYS. All of them carry the shard's hash tag (`chrysalis:{invoke-3}:fair:…`),
  so they hash to one slot and a script touches them atomically, on a cluster too:
    KEYS[1]  lanes     zset  customer → virtual time (vt) of each backlogged customer
    KEYS[2]  lane:     key prefix: `lane:<customer>` (zset of held job ids, score priority·2^32 + seq) is
                       built here from it. It is declared as a key so that a cluster routes the script by
                       it; it has the shard's tag, so every lane key built from it is in the same slot.
    KEYS[3]  inflight  zset  released job id → release time (ms)
    KEYS[4]  released  hash  released job id → "<estimated ms>|<customer>"
    KEYS[5]  cost      hash  customer → estimated worker ms per job (EWMA of measured work)
    KEYS[6]  meta      hash  vmin (the shard's virtual time), work (estimated ms released and unfinished)
    KEYS[7]  delayed   zset  job id → due time (ms)
    KEYS[8]  info      hash  job id → hints of a held job (JSON, only when it has any), or
                             {c = customer, s = lane score, h = hints} of a delayed job (JSON)
    KEYS[9]  vt        hash  customer → vt of a customer without a lane (only while above vmin)
    KEYS[10] weight    hash  customer → weight (tier weight, FAIR_WEIGHTS)
    KEYS[11] count     hash  customer → released, unfinished jobs
    KEYS[12] job:      key prefix of BullMQ's job hashes (`<prefix>:<queue>:`): `job:<id>`. Declared as a
                       key for the same reason as KEYS[2]; the queue's tag keeps it in this slot.
    KEYS[13] paused    set   customers an admin paused (a per-shard copy of `customers.paused_at`): their
                             held jobs stay in their lanes, none is released

  ARGV[1..9], every script: now (ms), window (ms of estimated work), minimum jobs in flight, most released
  jobs per customer (0: no cap), default cost (ms), EWMA factor, most entries moved per call, grace (ms),
  most jobs in flight (0: no cap). The script's own arguments start at ARGV[10].
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

local function saveMeta()
  if work < 0.000001 or redis.call('ZCARD', inflightKey) == 0 then work = 0 end
  redis.call('HSET', metaKey, 'vmin', tostring(vmin), 'work', tostring(work))
end

-- Per-call caches (a script runs atomically, so nothing else changes these meanwhile): each customer's
-- weight and paused flag, and the number of jobs in flight, read once per call rather than once per job.
local weights, pausedFlags, inflightCount = {}, {}, nil

local function weightOf(customer)
  local w = weights[customer]
  if w == nil then
    w = tonumber(redis.call('HGET', weightKey, customer)) or 1
    weights[customer] = w
  end
  return w
end

-- Stores a customer's weight (admit, relane), once per call.
local function setWeight(customer, weight)
  local w = tonumber(weight) or 1
  if weights[customer] ~= w then
    redis.call('HSET', weightKey, customer, weight)
    weights[customer] = w
  end
end

local function inflightNow()
  if inflightCount == nil then inflightCount = redis.call('ZCARD', inflightKey) end
  return inflightCount
end

-- The shard's virtual time only moves forward, and never past a backlogged lane: a customer that joins
-- starts at vmin, so an idle customer banks no credit and one that used idle capacity owes none.
-- `isHead`: `start` is the smallest vt in `lanes` (release just read it), so the lanes need no look.
local function advanceVmin(start, isHead)
  if not isHead then
    local head = redis.call('ZRANGE', lanesKey, 0, 0, 'WITHSCORES')
    if head[2] and tonumber(head[2]) < start then start = tonumber(head[2]) end
  end
  if start > vmin then vmin = start end
end

-- vt of a customer without a lane: its own while above vmin, else vmin.
local function laneless(customer)
  local own = tonumber(redis.call('HGET', vtKey, customer))
  if own and own > vmin then return own end
  return vmin
end

local function storeLaneless(customer, vt)
  if vt > vmin then
    redis.call('HSET', vtKey, customer, tostring(vt))
  else
    redis.call('HDEL', vtKey, customer)
  end
end

-- Adds `delta` (worker ms / weight) to a customer's vt, in its lane or outside.
local function charge(customer, delta)
  if delta == 0 then return end
  if redis.call('ZSCORE', lanesKey, customer) then
    redis.call('ZINCRBY', lanesKey, delta, customer)
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

local function isPaused(customer)
  local paused = pausedFlags[customer]
  if paused == nil then
    paused = redis.call('SISMEMBER', pausedKey, customer) == 1
    pausedFlags[customer] = paused
  end
  return paused
end

local function underCap(customer)
  return maxPerCustomer <= 0 or (tonumber(redis.call('HGET', countKey, customer)) or 0) < maxPerCustomer
end

-- Counts a job as released (in flight) and returns its estimated cost; the caller charges it.
local function markReleased(id, customer)
  local est = tonumber(redis.call('HGET', costKey, customer)) or defaultCost
  local added = redis.call('ZADD', inflightKey, now, id)
  if inflightCount ~= nil then inflightCount = inflightCount + added end
  redis.call('HSET', releasedKey, id, est .. '|' .. customer)
  redis.call('HINCRBY', countKey, customer, 1)
  work = work + est
  return est
end

-- Takes a job out of the in-flight accounting; returns its estimate (nil when it was not in flight).
local function unmarkReleased(id)
  local record = redis.call('HGET', releasedKey, id)
  if not record then return nil end
  local bar = string.find(record, '|', 1, true)
  local est = tonumber(string.sub(record, 1, bar - 1))
  local customer = string.sub(record, bar + 1)
  redis.call('HDEL', releasedKey, id)
  local removed = redis.call('ZREM', inflightKey, id)
  if inflightCount ~= nil then inflightCount = inflightCount - removed end
  if redis.call('HINCRBY', countKey, customer, -1) <= 0 then redis.call('HDEL', countKey, customer) end
  work = work - est
  return est, customer
end

-- Holds a job in its customer's lane; a customer without a lane joins `lanes` at max(own vt, vmin).
local function hold(id, customer, score, hints)
  redis.call('ZADD', lanePrefix .. customer, score, id)
  if hints and hints ~= '' then redis.call('HSET', infoKey, id, hints) end
  if not redis.call('ZSCORE', lanesKey, customer) then
    redis.call('ZADD', lanesKey, laneless(customer), customer)
    redis.call('HDEL', vtKey, customer)
  end
end

local function delay(id, customer, score, hints, dueAt)
  redis.call('ZADD', delayedKey, dueAt, id)
  redis.call('HSET', infoKey, id, cjson.encode({ c = customer, s = score, h = hints }))
end
