--[[
  withdraw: a held or delayed job was cancelled; it leaves its lane (or `delayed`).
  ARGV[10] id, ARGV[11] customer.
  Returns 1 when it was held or delayed here, 0 otherwise (released already, or unknown).
]]
local id, customer = ARGV[10], ARGV[11]
local lane = lanePrefix .. customer
local removed = redis.call('ZREM', lane, id) + redis.call('ZREM', delayedKey, id)
if removed > 0 then
  redis.call('HDEL', infoKey, id)
  local vt = laneOf(customer)
  if vt and redis.call('EXISTS', lane) == 0 then
    redis.call('ZREM', lanesKey, customer)
    who(customer).lane = false
    storeLaneless(customer, vt)
  end
end
finish()
return removed > 0 and 1 or 0
