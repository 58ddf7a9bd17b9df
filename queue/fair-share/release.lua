--[[
  release: jobs of this shard finished; charge them, then fill the window from the lanes.
  ARGV[10…], 3 per job: id, customer, charged worker ms (fair-share.ts `chargeOf`: a base cost per job
  plus its measured work, capped; '' when the job did not run: its row was no longer releasable, so its
  slot is freed and its estimated charge refunded).
  1. Each finished job leaves `inflight`; its customer's vt moves by (measured − estimated) / weight (the
     estimate was charged when it was released) and its cost EWMA takes the measurement.
  2. Delayed jobs that are due join their lanes.
  3. While the window has room (estimated work below the window, or fewer than the minimum jobs in
     flight): the next job of the lane with the smallest vt whose customer is under its cap and not paused
     is released, and its estimate charged to that vt (start-time fair queueing). A paused customer's lane
     keeps up with vmin meanwhile, so it banks no credit for the pause.
  Returns the released jobs, flat: id, customer, hints ('' for none), backlogged, id, customer, … —
  backlogged '1' when its customer still has jobs held in its lane here, else '0' (fair-share.ts
  `ReleasedJob.backlogged`).
]]
for i = 10, #ARGV, 3 do
  local id, customer, measured = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local est = unmarkReleased(id)
  local w = weightOf(customer)
  if measured then
    charge(customer, (measured - (est or 0)) / w)
    local old = tonumber(redis.call('HGET', costKey, customer))
    local ewma = measured
    if old then ewma = old + alpha * (measured - old) end
    redis.call('HSET', costKey, customer, tostring(ewma))
  elseif est then
    charge(customer, -est / w)
  end
end

local due = redis.call('ZRANGEBYSCORE', delayedKey, '-inf', now, 'LIMIT', 0, maxPerCall)
for _, id in ipairs(due) do
  local entry = redis.call('HGET', infoKey, id)
  redis.call('ZREM', delayedKey, id)
  redis.call('HDEL', infoKey, id)
  if entry then
    local job = cjson.decode(entry)
    hold(id, job.c, job.s, job.h)
  end
end

local out = {}
local capped = {}
local pausedLanes = {}
local popped = 0
while popped < maxPerCall and windowOpen() do
  local head = redis.call('ZRANGE', lanesKey, 0, 0, 'WITHSCORES')
  if not head[1] then break end
  local customer, start = head[1], tonumber(head[2])
  if isPaused(customer) then
    redis.call('ZREM', lanesKey, customer)
    pausedLanes[#pausedLanes + 1] = { customer, start }
  elseif not underCap(customer) then
    -- Out of the way until the end of this call, so the next lane gets the room.
    redis.call('ZREM', lanesKey, customer)
    capped[#capped + 1] = { customer, head[2] }
  else
    local lane = lanePrefix .. customer
    local job = redis.call('ZPOPMIN', lane)
    if not job[1] then
      -- A lane lost its key (a flush); the sweeper re-lanes its jobs.
      redis.call('ZREM', lanesKey, customer)
      storeLaneless(customer, start)
    else
      local id = job[1]
      advanceVmin(start, true)
      local est = markReleased(id, customer)
      local vt = start + est / weightOf(customer)
      local backlogged = '1'
      if redis.call('ZCARD', lane) == 0 then
        redis.call('ZREM', lanesKey, customer)
        storeLaneless(customer, vt)
        backlogged = '0'
      else
        redis.call('ZADD', lanesKey, vt, customer)
      end
      local hints = redis.call('HGET', infoKey, id)
      if hints then redis.call('HDEL', infoKey, id) else hints = '' end
      out[#out + 1] = id
      out[#out + 1] = customer
      out[#out + 1] = hints
      out[#out + 1] = backlogged
      popped = popped + 1
    end
  end
end
for _, entry in ipairs(capped) do
  redis.call('ZADD', lanesKey, entry[2], entry[1])
end
for _, entry in ipairs(pausedLanes) do
  redis.call('ZADD', lanesKey, math.max(entry[2], vmin), entry[1])
end
saveMeta()
return out
