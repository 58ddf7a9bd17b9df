--[[
  relane: the sweeper's check of unfinished rows. Each id that is in none of BullMQ (its job hash
  `job:<id>`), its lane or `delayed` goes back into its lane (or `delayed`): never straight into BullMQ,
  so what Redis lost is released fairly. An id released within the grace is left alone (its BullMQ add
  may still be under way); one released earlier but never added leaves the in-flight accounting.
  ARGV[10…], 5 per job: id, customer, weight, lane score, due time (ms; 0: not delayed).
  Returns the ids put back.
]]
local relaned = {}
for i = 10, #ARGV, 5 do
  local id, customer, weight, score, dueAt = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
  local releasedAt = tonumber(redis.call('ZSCORE', inflightKey, id))
  if redis.call('EXISTS', jobPrefix .. id) == 1 or redis.call('ZSCORE', lanePrefix .. customer, id)
    or redis.call('ZSCORE', delayedKey, id) or (releasedAt and releasedAt > now - graceMs) then
    -- where it should be, or on its way
  else
    local record = unmarkReleased({ id })[id]
    if record then charge(record[2], -record[1] / weightOf(record[2])) end
    setWeight(customer, weight)
    if dueAt > now then
      delay(id, customer, score, '', dueAt)
    else
      hold(id, customer, score, '')
    end
    relaned[#relaned + 1] = id
  end
end
finish()
return relaned
