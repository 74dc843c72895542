-- Token bucket in GCRA form (src/core/gcra.ts). Kept under the state key as one number, the
-- theoretical arrival time (TAT); nil or 0 when full.
local bucket = { width = 1 }

function bucket.params(values)
  local capacity, interval_ms = values[1], values[2]
  return { capacity = capacity, interval_ms = interval_ms, window_ms = capacity * interval_ms }
end

-- Returns allowed, remaining, reset_ms (until full), retry_ms, and the new TAT.
function bucket.check(p, cost, op, stored_tat)
  local base = now
  if stored_tat and stored_tat > now then base = stored_tat end
  local interval, capacity = p.interval_ms, p.capacity
  local tolerance = capacity * interval
  local tat = base + cost * interval
  local ahead = tat - now
  if ahead <= tolerance + EPSILON_MS then return true, capacity - ahead / interval, ahead, 0, tat end
  local retry_ms = ahead - tolerance
  if cost * interval > tolerance + EPSILON_MS then retry_ms = INF end
  ahead = base - now
  local reset_ms = 0
  if ahead > 0 then reset_ms = ahead end
  return false, capacity - ahead / interval, reset_ms, retry_ms, base
end

function bucket.adjust(p, delta, op, stored_tat)
  local base = now
  if stored_tat and stored_tat > now then base = stored_tat end
  local interval = p.interval_ms
  local tat = base + delta * interval
  -- A refund never fills the bucket above full.
  if delta < 0 and tat < now then tat = now end
  local ahead = tat - now
  local reset_ms = 0
  if ahead > 0 then reset_ms = ahead end
  return true, p.capacity - ahead / interval, reset_ms, 0, tat
end

return bucket
