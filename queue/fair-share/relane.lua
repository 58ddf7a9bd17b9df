--[[
  relane: the sweeper's check of unfinished rows (and a resumed customer's set-aside jobs). Each id that is
  in none of BullMQ (its job hash `job:<id>`), its lane or `delayed` goes back into its lane (or `delayed`):
  never straight into BullMQ, so what Redis lost is released fairly. An id released within the grace is
  left alone (its BullMQ add may still be under way); one released earlier but never added leaves the
  in-flight accounting.
  A lane's list is not searched id by id (a flood's lane is long): a job without a priority whose customer's
  list holds entries is taken as held there, unless this same sweeper pass rebuilt that list from empty (the
  pass's earlier pages put its entries there), or the caller knows the job is not held (`known`: a resumed
  job it just took out of BullMQ). So after Redis loses a lane, the first pass rebuilds all of it; a job lost
  any other way while its customer's list is non-empty (a popped id never added is re-laned by `reconcile`)
  goes back once that list drains.
  A bundle's member (its row names the bundle) whose bundle was released as one entry within the grace is
  left alone too: the bundle's BullMQ add may be under way.
  ARGV[10] the sweeper pass ('' for none), ARGV[11] known ('1' or '0'), ARGV[12…], 6 per job: id, customer,
  weight, lane score, due time (ms; 0: not delayed), bundle id ('' for none).
  Returns the ids put back.
]]
local pass, known = ARGV[10], ARGV[11] == '1'
local listHeld = {} -- customer → its list was non-empty, not rebuilt by this pass, when first looked at
local function takenAsHeld(customer)
  if known then return false end
  if listHeld[customer] == nil then
    listHeld[customer] = redis.call('LLEN', lanePrefix .. customer) > 0
      and (pass == '' or redis.call('HGET', metaKey, 'pass:' .. customer) ~= pass)
  end
  return listHeld[customer]
end

local relaned, rebuilt = {}, {}
for i = 12, #ARGV, 6 do
  local id, customer, weight, score, dueAt, bundle = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4]), ARGV[i + 5]
  local held
  if tonumber(score) < unranked and dueAt <= now then
    held = takenAsHeld(customer)
  else
    held = redis.call('ZSCORE', rankedLane(customer), id)
  end
  local releasedAt = not held and tonumber(redis.call('ZSCORE', inflightKey, id))
  if not held and not releasedAt and bundle ~= '' then releasedAt = tonumber(redis.call('ZSCORE', inflightKey, bundle)) end
  if held or redis.call('EXISTS', jobPrefix .. id) == 1 or redis.call('ZSCORE', delayedKey, id)
    or (releasedAt and releasedAt > now - graceMs) then
    -- where it should be, or on its way
  else
    local record = unmarkReleased({ id })[id]
    if record then charge(record[2], -record[1] / weightOf(record[2])) end
    setWeight(customer, weight)
    if dueAt > now then
      delay(id, customer, score, '', dueAt)
    else
      hold(id, customer, score, '')
      if pass ~= '' and not rebuilt[customer] then
        rebuilt[customer] = true
        redis.call('HSET', metaKey, 'pass:' .. customer, pass)
      end
    end
    relaned[#relaned + 1] = id
  end
end
finish()
return relaned
