/*
 * The invocation cache's Redis scripts (db/invocation-cache.ts). One hash per customer holds all its cached
 * results. Fields:
 *   `<substrateId>:<epoch>|<canonical parameters>`  an entry (substrate ids are `0x…`), value its result's JSON;
 *   `e:<substrateId>`  the substrate's epoch (absent = 0): negative from its deletion until it is created again;
 *     each move takes it one further from 0 than it was, so it never comes back to an earlier value. Lookups
 *     read entries under the current epoch only;
 *   `#bytes`  the running size of the entries and epoch fields (see ENTRY_OVERHEAD).
 * Reserved fields start with `#` or `e:`, which no entry field does, and are never evicted.
 *
 * A result is stored under the epoch its job read before it began evaluating, and only if that is still the
 * current epoch and not a negative one. A store can land long after its evaluation (the write is not awaited;
 * a worker may stall): had the substrate been changed, deleted or deleted and created again in between, the
 * epoch has moved and the result is dropped, instead of answering as a new substrate's (or a deleted one's)
 * result. Epochs live as long as the hash, which each epoch move keeps for another TTL: only a store landing
 * later than that (an hour by default) after a delete could still slip past it.
 */

/**
 * Bytes counted per field on top of its name and value: about what Redis spends per hash entry besides them
 * (the dict entry, the two strings' headers, a bucket pointer, allocator rounding), so `#bytes` tracks the
 * hash's real memory rather than only its payload.
 */
const ENTRY_OVERHEAD = 64;

/** Lua: the field's name is reserved (the size or an epoch), not an entry. */
const isReservedLua = `local function reserved(f)
  local c = string.byte(f, 1)
  return c == 35 or (c == 101 and string.byte(f, 2) == 58)
end`;

/**
 * The values of the entries asked for under their substrates' current epochs (nil for a miss), then those
 * epochs, in order. Empty parameters ask for the epoch alone (no entry's parameters are empty).
 * KEYS[1] the customer's hash; ARGV substrate id, canonical parameters pairs. Returns {values, epochs}.
 */
export const lookupLua = `local current, epochs, fields = {}, {}, {}
for i = 1, #ARGV, 2 do
  local s = ARGV[i]
  local e = current[s]
  if not e then
    e = redis.call('hget', KEYS[1], 'e:' .. s) or '0'
    current[s] = e
  end
  epochs[#epochs + 1] = e
  fields[#fields + 1] = s .. ':' .. e .. '|' .. ARGV[i + 1]
end
return {redis.call('hmget', KEYS[1], unpack(fields)), epochs}`;

/**
 * Stores each entry, in order, if the epoch its job read is still its substrate's current one, not negative (see
 * the top of this file), keeping `#bytes` ≤ ARGV[2]: an entry replacing one of the same field frees that
 * first; then random entries (never reserved fields) are evicted until the new one fits (random replacement:
 * a one-off invocation does not keep a popular one out for long). An entry that cannot fit even so (bigger
 * than the budget) is not stored. Then EXPIRE, in the same script, so the key never lives without its expiry.
 * KEYS[1] the customer's hash; ARGV[1] TTL seconds, ARGV[2] byte budget, then substrate id, canonical
 * parameters, value, epoch read quadruples. Returns how many entries were stored.
 */
export const storeLua = `${isReservedLua}
local key, budget, overhead = KEYS[1], tonumber(ARGV[2]), ${ENTRY_OVERHEAD}
local bytes = tonumber(redis.call('hget', key, '#bytes') or '0')
local epochs, stored = {}, 0
local function fits(need)
  local want = 1
  while bytes + need > budget do
    local victims = redis.call('hrandfield', key, want)
    local freed = false
    for _, f in ipairs(victims) do
      if not reserved(f) then
        bytes = bytes - (#f + redis.call('hstrlen', key, f) + overhead)
        redis.call('hdel', key, f)
        freed = true
        if bytes + need <= budget then return true end
      end
    end
    if not freed then
      -- Only reserved fields were drawn: draw more; once all fields were drawn, nothing is left to evict.
      if #victims < want then return false end
      want = want * 2
    end
  end
  return true
end
local function store(f, value)
  local old = redis.call('hstrlen', key, f)
  if old > 0 then
    bytes = bytes - (#f + old + overhead)
    redis.call('hdel', key, f)
  end
  local need = #f + #value + overhead
  if need <= budget and fits(need) then
    redis.call('hset', key, f, value)
    bytes = bytes + need
    stored = stored + 1
  end
end
for i = 3, #ARGV, 4 do
  local s, value, read = ARGV[i], ARGV[i + 2], ARGV[i + 3]
  local e = epochs[s]
  if not e then
    e = redis.call('hget', key, 'e:' .. s) or '0'
    epochs[s] = e
  end
  if e == read and tonumber(e) >= 0 then store(s .. ':' .. e .. '|' .. ARGV[i + 1], value) end
end
redis.call('hset', key, '#bytes', bytes)
redis.call('expire', key, ARGV[1])
return stored`;

/**
 * Moves the substrate's epoch on, to |epoch| + 1 (ARGV[2] 'changed') or its negative ('deleted'), so its
 * entries are no longer found (they stay, counted, until evicted or expired) and stores of results whose
 * evaluation began before are dropped. Recorded even in a missing hash, for such a store may come after; a new
 * epoch field is counted into `#bytes` (its value as 20 characters, the most it can grow to). Then EXPIRE, so
 * the hash has an expiry and the new epoch outlives the stores that may still come.
 * KEYS[1] the customer's hash; ARGV[1] substrate id, ARGV[2] 'changed' or 'deleted', ARGV[3] TTL seconds.
 */
export const moveEpochLua = `local f = 'e:' .. ARGV[1]
local e = redis.call('hget', KEYS[1], f)
if not e then redis.call('hincrby', KEYS[1], '#bytes', #f + 20 + ${ENTRY_OVERHEAD}) end
local moved = math.abs(tonumber(e or '0')) + 1
if ARGV[2] == 'deleted' then moved = -moved end
redis.call('hset', KEYS[1], f, string.format('%d', moved))
redis.call('expire', KEYS[1], ARGV[3])`;

/**
 * Moves the epoch of each substrate marked deleted (negative) on to |epoch| + 1: created again, it is cached
 * again, under an epoch none of its predecessor's results has. A substrate without an epoch field keeps none
 * (nothing of a predecessor is left to hide), so creating substrates does not grow the hash.
 * KEYS[1] the customer's hash; ARGV substrate ids.
 */
export const reviveLua = `for i = 1, #ARGV do
  local f = 'e:' .. ARGV[i]
  local e = tonumber(redis.call('hget', KEYS[1], f) or '0')
  if e < 0 then redis.call('hset', KEYS[1], f, string.format('%d', 1 - e)) end
end`;
