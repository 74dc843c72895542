-- Fixed window aligned to the epoch (src/core/fixed-window.ts). Kept under the state key as two
-- numbers: the window's start and its count.
local fixed = { width = 2 }

function fixed.params(values)
  return { capacity = values[1], window_ms = values[2] }
end

local function result(p, allowed, retry_ms, start, count)
  local reset_ms = 0
  if count > 0 then reset_ms = start + p.window_ms - now end
  return allowed, p.capacity - count, reset_ms, retry_ms, start, count
end

local function current(p, stored_start, stored_count)
  local start = floor(now / p.window_ms) * p.window_ms
  if stored_start == start then return start, stored_count end
  return start, 0
end

function fixed.check(p, cost, op, stored_start, stored_count)
  local start, count = current(p, stored_start, stored_count)
  local limit = p.capacity
  if fits(count, cost, limit) then return result(p, true, 0, start, count + cost) end
  local retry_ms = INF
  if fits(0, cost, limit) then retry_ms = start + p.window_ms - now end
  return result(p, false, retry_ms, start, count)
end

-- A refund goes only into the window the charge was made in; a past window's charge is gone.
function fixed.adjust(p, delta, op, stored_start, stored_count)
  local start, count = current(p, stored_start, stored_count)
  if delta >= 0 then
    count = count + delta
  elseif op.charged_at >= start then
    count = count + delta
    if count < 0 then count = 0 end
  end
  return result(p, true, 0, start, count)
end

return fixed
