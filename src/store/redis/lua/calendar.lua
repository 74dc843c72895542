-- A budget per calendar period (src/core/calendar.ts, src/core/period.ts): day, ISO week (from
-- Monday) or month of a fixed UTC offset. Kept under the state key as a fixed window's two
-- numbers: the period's start and what was charged in it.
local calendar = { width = 2 }

local DAY_MS = 86400000
local DAY, WEEK, MONTH = 1, 2, 3

function calendar.params(values)
  -- window_ms: how long an alert is remembered (the period's shortest length).
  return { capacity = values[1], period = values[2], shift_ms = values[3] * 60000, window_ms = values[4] }
end

-- Days since 1970-01-01 of a date of the proleptic Gregorian calendar (H. Hinnant's algorithm).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- The year and month of a day counted from 1970-01-01.
local function civil_from_days(z)
  z = z + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local m = mp + 3
  if mp >= 10 then m = mp - 9 end
  if m <= 2 then y = y + 1 end
  return y, m
end

-- The period containing now: its start and end in ms since the epoch.
local function bounds(p)
  local shift = p.shift_ms
  local day = floor((now + shift) / DAY_MS)
  local first, last
  if p.period == DAY then
    first, last = day, day + 1
  elseif p.period == WEEK then
    -- 1970-01-01 was a Thursday: Monday is 0 in (day + 3) % 7.
    first = day - (day + 3) % 7
    last = first + 7
  else
    local y, m = civil_from_days(day)
    first = days_from_civil(y, m, 1)
    if m == 12 then last = days_from_civil(y + 1, 1, 1) else last = days_from_civil(y, m + 1, 1) end
  end
  return first * DAY_MS - shift, last * DAY_MS - shift
end

local function result(p, allowed, retry_ms, start, finish, count)
  local reset_ms = 0
  if count > 0 then reset_ms = finish - now end
  return allowed, p.capacity - count, reset_ms, retry_ms, start, count
end

function calendar.check(p, cost, op, stored_start, stored_count)
  local start, finish = bounds(p)
  local count = 0
  if stored_start == start then count = stored_count end
  local limit = p.capacity
  if fits(count, cost, limit) then return result(p, true, 0, start, finish, count + cost) end
  local retry_ms = INF
  if fits(0, cost, limit) then retry_ms = finish - now end
  return result(p, false, retry_ms, start, finish, count)
end

-- A refund goes only into the period the charge was made in; a past period's charge is gone.
function calendar.adjust(p, delta, op, stored_start, stored_count)
  local start, finish = bounds(p)
  local count = 0
  if stored_start == start then count = stored_count end
  if delta >= 0 then
    count = count + delta
  elseif op.charged_at >= start then
    count = count + delta
    if count < 0 then count = 0 end
  end
  return result(p, true, 0, start, finish, count)
end

return calendar
