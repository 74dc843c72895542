-- Calls in flight (src/core/concurrency.ts): a sorted set under the limit's own key, members the
-- lease ids scored by their expiry. A step returns the change to write: { add = id, at = expiry }
-- or { remove = id }.
local leases = { width = 0, in_flight = true }

function leases.params(values)
  return { capacity = values[1], lease_ms = values[2], window_ms = values[2] }
end

-- The live leases: their expiries (soonest first), the expiry of `id`'s lease if it holds one, and
-- whether the set still holds expired leases (the write then trims them). The whole set is read:
-- expired leases are trimmed on each write, so they are few, and knowing of them spares the trim
-- (a command) on every write that has none to trim.
local function held(key, id)
  local raw = call('ZRANGE', key, 0, -1, 'WITHSCORES')
  local ids, expiries, mine, stale = {}, {}, nil, false
  for j = 1, #raw, 2 do
    local expiry = tonumber(raw[j + 1])
    if expiry > now then
      ids[#ids + 1], expiries[#expiries + 1] = raw[j], expiry
      if raw[j] == id then mine = expiry end
    else
      stale = true
    end
  end
  return ids, expiries, mine, stale
end

local function result(p, allowed, retry_ms, size, last, change)
  local reset_ms = 0
  if last and last > now then reset_ms = last - now end
  return allowed, p.capacity - size, reset_ms, retry_ms, change
end

-- `slots` is 1, or 0 to only look; a reservation (op.hold) takes a lease named by the op id.
function leases.check(p, slots, op)
  local _, expiries, _, stale = held(op.key, op.id)
  local size, limit = #expiries, p.capacity
  local last = expiries[size]
  if not fits(size, slots, limit) then
    local retry_ms = INF
    if fits(0, slots, limit) then retry_ms = expiries[size + slots - limit] - now end
    return result(p, false, retry_ms, size, last, nil)
  end
  local change = nil
  if op.hold and slots > 0 then
    local expiry = now + p.lease_ms
    change = { add = op.id, at = expiry, trim = stale }
    size = size + 1
    if not last or expiry > last then last = expiry end
  end
  return result(p, true, 0, size, last, change)
end

-- Settling charges calls in flight nothing; it releases the reservation's lease when asked to.
function leases.adjust(p, _, op)
  if not op.release then return leases.check(p, 0, op) end
  local ids, expiries, mine, stale = held(op.key, op.id)
  local size = #expiries
  local last = expiries[size]
  local change = nil
  if mine then
    change = { remove = op.id, trim = stale }
    size = size - 1
    last = nil
    for j = 1, #ids do
      if ids[j] ~= op.id and (not last or expiries[j] > last) then last = expiries[j] end
    end
  end
  return result(p, true, 0, size, last, change)
end

-- The key lives until its last lease expires: `reset_ms` (from check or adjust) is already that
-- lease's expiry less now, counted over the same live leases this writes, and 0 when none is left
-- (the key is then empty, so gone, or holds only expired leases and expires at once). Reading it
-- back (EXISTS, ZRANGE) cost two commands per call.
function leases.write(p, key, change, reset_ms)
  if not change then return end
  if change.trim then call('ZREMRANGEBYSCORE', key, '-inf', format('%.17g', now)) end
  if change.remove then call('ZREM', key, change.remove) end
  if change.add then call('ZADD', key, format('%.17g', change.at), change.add) end
  if reset_ms > 0 then call('PEXPIRE', key, px(reset_ms)) end
end

return leases
