-- Sliding window, two-window weighted counter (src/core/sliding-window.ts). Kept under the state
-- key as three numbers: the current window's start, its count and the previous window's count.
local sliding = { width = 3 }

function sliding.params(values)
  return { capacity = values[1], window_ms = values[2] }
end

local function current(p, stored_start, stored_current, stored_previous)
  local window = p.window_ms
  local start = floor(now / window) * window
  if stored_start == start then return start, stored_current, stored_previous end
  if stored_start == start - window then return start, 0, stored_current end
  return start, 0, 0
end

local function result(p, allowed, retry_ms, start, count, previous)
  local window = p.window_ms
  local weight = (start + window - now) / window
  local reset_ms = 0
  if count > 0 then
    reset_ms = start + 2 * window - now
  elseif previous > 0 then
    reset_ms = start + window - now
  end
  return allowed, p.capacity - (previous * weight + count), reset_ms, retry_ms, start, count, previous
end

function sliding.check(p, cost, op, stored_start, stored_current, stored_previous)
  local limit, window = p.capacity, p.window_ms
  local start = floor(now / window) * window
  local count, previous = 0, 0
  if stored_start == start then
    count, previous = stored_current, stored_previous
  elseif stored_start == start - window then
    previous = stored_current
  end
  local weight = (start + window - now) / window
  if fits(previous * weight + count, cost, limit) then
    count = count + cost
    local reset_ms = 0
    if count > 0 then
      reset_ms = start + 2 * window - now
    elseif previous > 0 then
      reset_ms = start + window - now
    end
    return true, limit - (previous * weight + count), reset_ms, 0, start, count, previous
  end
  local retry_ms = INF
  if fits(0, cost, limit) then
    local finish = start + window
    if fits(count, cost, limit) then
      -- The previous window's weight must fall to (limit - count - cost) within this window.
      retry_ms = finish - window * (limit - count - cost) / previous - now
      if retry_ms < EPSILON_MS then retry_ms = EPSILON_MS end
    else
      -- Only after this window closes: its count becomes the previous one and decays.
      retry_ms = finish + window - window * (limit - cost) / count - now
    end
  end
  return result(p, false, retry_ms, start, count, previous)
end

-- A refund goes into the window the charge was made in (current or previous); older ones are gone.
function sliding.adjust(p, delta, op, stored_start, stored_current, stored_previous)
  local start, count, previous = current(p, stored_start, stored_current, stored_previous)
  if delta >= 0 then
    count = count + delta
  elseif op.charged_at >= start then
    count = count + delta
    if count < 0 then count = 0 end
  elseif op.charged_at >= start - p.window_ms then
    previous = previous + delta
    if previous < 0 then previous = 0 end
  end
  return result(p, true, 0, start, count, previous)
end

return sliding
