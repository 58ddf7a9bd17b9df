--[[
  withdraw: a held or delayed job was cancelled; it leaves its lane (or `delayed`).
  ARGV[10] id, ARGV[11] customer.
  Returns 1 when it was held or delayed here, 0 otherwise (released already, or unknown).
]]
local id, customer = ARGV[10], ARGV[11]
local lane = lanePrefix .. customer
-- Its list entry is the id, or the id and its hint flags: one pass over the list finds either.
local removed = redis.call('ZREM', rankedLane(customer), id) + redis.call('ZREM', delayedKey, id)
if removed == 0 then
  for _, entry in ipairs(redis.call('LRANGE', lane, 0, -1)) do
    if entryOf(entry) == id then
      removed = redis.call('LREM', lane, 1, entry)
      break
    end
  end
end
if removed > 0 then
  redis.call('HDEL', infoKey, id)
  local vt = laneOf(customer)
  if vt and laneSize(customer) == 0 then
    redis.call('ZREM', lanesKey, customer)
    forgetPasses({ customer })
    who(customer).lane = false
    storeLaneless(customer, vt)
  end
end
finish()
return removed > 0 and 1 or 0
