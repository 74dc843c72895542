-- Calls in flight (src/core/concurrency.ts): a sorted set under the limit's own key, members the
-- lease ids scored by their expiry. A step returns the change to write: { add = id, at = expiry }
-- or { remove = id }.
local leases = { width = 0, in_flight = true }

function leases.params(values)
  return { capacity = values[1], lease_ms = values[2], window_ms = values[2] }
end

-- What a step reads of the lease set, by counts and ranks: a score Redis replies is a double it
-- formats and this script parses again (with ZRANGE … WITHSCORES over 16 leases, that was a third
-- of a reservation's work in Redis), so scores are read only where a result needs one.

-- `now` as the text of a score bound, formatted once per batch.
local now_text_of, now_text = nil, nil
local function now_as_text()
  if now_text_of ~= now then now_text_of, now_text = now, format('%.17g', now) end
  return now_text
end

-- The set's size and how many of its leases expired (they stay until a write trims them).
local function counts(key)
  local size = call('ZCARD', key)
  if size == 0 then return 0, 0 end
  return size, call('ZCOUNT', key, '-inf', now_as_text())
end

-- The expiry of the lease at `rank` (0: the soonest).
local function expiry_at(key, rank)
  return tonumber(call('ZRANGE', key, rank, rank, 'WITHSCORES')[2])
end

-- The latest expiry of the live leases (some are live): the key's TTL, which every write sets to
-- that expiry rounded up to a whole ms (leases.write), counted from the whole ms Redis counts TTLs
-- from, so that writing it back sets the same TTL; read from the set when the key has no TTL.
local function latest(key, size)
  local ttl = call('PTTL', key)
  if ttl > 0 then return floor(now) + ttl end
  return expiry_at(key, size - 1)
end

local function result(p, allowed, retry_ms, live, last, change)
  local reset_ms = 0
  if last and last > now then reset_ms = last - now end
  return allowed, p.capacity - live, reset_ms, retry_ms, change
end

-- `slots` is 1, or 0 to only look; a reservation (op.hold) takes a lease named by the op id.
function leases.check(p, slots, op)
  local key = op.key
  local size, stale = counts(key)
  local live, limit = size - stale, p.capacity
  local last = nil
  if live > 0 then last = latest(key, size) end
  if not fits(live, slots, limit) then
    local retry_ms = INF
    -- The expiry of the live lease that frees enough room.
    if fits(0, slots, limit) then retry_ms = expiry_at(key, stale + live + slots - limit - 1) - now end
    return result(p, false, retry_ms, live, last, nil)
  end
  local change = nil
  if op.hold and slots > 0 then
    local at = now + p.lease_ms
    change = { add = op.id, at = at, trim = stale > 0 }
    live = live + 1
    if not last or at > last then last = at end
  end
  return result(p, true, 0, live, last, change)
end

-- Settling charges calls in flight nothing; it releases the reservation's lease when asked to.
function leases.adjust(p, _, op)
  if not op.release then return leases.check(p, 0, op) end
  local key = op.key
  local size, stale = counts(key)
  local live = size - stale
  if live == 0 then return result(p, true, 0, 0, nil, nil) end
  -- The lease's rank: it is live when no expired lease ranks after it.
  local rank = call('ZRANK', key, op.id)
  if not rank or rank < stale then return result(p, true, 0, live, latest(key, size), nil) end
  live = live - 1
  local last = nil
  if live > 0 then
    -- Its release leaves the latest expiry as it was, unless it held that one.
    if rank == size - 1 then last = expiry_at(key, size - 2) else last = latest(key, size) end
  end
  return result(p, true, 0, live, last, { remove = op.id, trim = stale > 0 })
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
