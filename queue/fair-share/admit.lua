--[[
  admit: a chunk of newly accepted jobs (rows already inserted) enters the shard.
  ARGV[10…], 6 per job: id, customer, weight, lane score (priority·2^32 + seq), due time (ms; 0: not
  delayed), hints (JSON text, '' for none).
  A job is released at once when its customer has no lane here, the window has room and the customer
  is under its cap and not paused; else it is held in its lane. A delayed job waits in `delayed` until due (release
  promotes it into its lane), so a delay cannot bypass fair sharing. Admitting a job twice is a no-op.
  Returns the ids released now (the caller adds them to BullMQ).
]]
local released = {}
for i = 10, #ARGV, 6 do
  local id, customer, weight, score = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local dueAt, hints = tonumber(ARGV[i + 4]), ARGV[i + 5]
  setWeight(customer, weight)
  if redis.call('HEXISTS', releasedKey, id) == 1 or redis.call('ZSCORE', lanePrefix .. customer, id)
    or redis.call('ZSCORE', delayedKey, id) then
    -- already admitted
  elseif dueAt > now then
    delay(id, customer, score, hints, dueAt)
  elseif not redis.call('ZSCORE', lanesKey, customer) and windowOpen() and underCap(customer) and not isPaused(customer) then
    local start = laneless(customer)
    advanceVmin(start)
    local est = markReleased(id, customer)
    storeLaneless(customer, start + est / tonumber(weight))
    released[#released + 1] = id
  else
    hold(id, customer, score, hints)
  end
end
saveMeta()
return released
