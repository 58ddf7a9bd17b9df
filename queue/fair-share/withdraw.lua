--[[
  withdraw: a held or delayed job was cancelled; it leaves its lane (or `delayed`).
  ARGV[10] id, ARGV[11] customer, ARGV[12] every hint flag letter, in the order fair-share.ts `packHints`
  writes them, ARGV[13] '1' when the job was never added to BullMQ (an 'at-once' admission whose row was not
  stored): then a released job leaves the in-flight accounting too.
  Returns 1 when it was held or delayed here (or released, with ARGV[13]), 0 otherwise (released already, or unknown).
  A list entry is the id, or the id, '!' and some of the letters in that order: LREM (a scan in Redis, no copy
  of the list) tries the id alone, then each such entry, so a cancel costs a few scans of one shard's lane at
  most — none for a job in flight.
]]
local id, customer, letters, unsent = ARGV[10], ARGV[11], ARGV[12], ARGV[13] == '1'
local lane = lanePrefix .. customer
if unsent and unmarkReleased({ id })[id] then
  finish()
  return 1
end
local removed = redis.call('ZREM', rankedLane(customer), id) + redis.call('ZREM', delayedKey, id)
if removed == 0 and not redis.call('ZSCORE', inflightKey, id) then
  for subset = 0, 2 ^ #letters - 1 do
    local entry = id
    if subset > 0 then
      entry = entry .. '!'
      for i = 1, #letters do
        if math.floor(subset / 2 ^ (i - 1)) % 2 == 1 then entry = entry .. string.sub(letters, i, i) end
      end
    end
    removed = redis.call('LREM', lane, 1, entry)
    if removed > 0 then break end
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
