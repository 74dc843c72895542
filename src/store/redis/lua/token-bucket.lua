-- Token bucket in GCRA form (src/core/gcra.ts). Kept under the state key as one number, the
-- theoretical arrival time (TAT); nil or 0 when full.
local bucket = { width = 1 }

function bucket.params(values)
  local capacity, interval_ms = values[1], values[2]
  return { capacity = capacity, interval_ms = interval_ms, window_ms = capacity * interval_ms }
end

local function result(p, allowed, retry_ms, tat)
  local ahead = tat - now
  local reset_ms = 0
  if ahead > 0 then reset_ms = ahead end
  return allowed, p.capacity - ahead / p.interval_ms, reset_ms, retry_ms, tat
end

function bucket.check(p, cost, op, stored_tat)
  local base = now
  if stored_tat and stored_tat > now then base = stored_tat end
  local interval = p.interval_ms
  local tolerance = p.capacity * interval
  local tat = base + cost * interval
  if tat - now <= tolerance + EPSILON_MS then return result(p, true, 0, tat) end
  local retry_ms = tat - now - tolerance
  if cost * interval > tolerance + EPSILON_MS then retry_ms = INF end
  return result(p, false, retry_ms, base)
end

function bucket.adjust(p, delta, op, stored_tat)
  local base = now
  if stored_tat and stored_tat > now then base = stored_tat end
  local tat = base + delta * p.interval_ms
  -- A refund never fills the bucket above full.
  if delta < 0 and tat < now then tat = now end
  return result(p, true, 0, tat)
end

return bucket
