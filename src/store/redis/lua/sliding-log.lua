-- Exact sliding window (src/core/sliding-log.ts): a sorted set under the limit's own key, members
-- "id|cost" scored by the time of the charge. A step returns the change to write:
-- { add = member, at = score, remove = member }.
local log = { width = 0 }

function log.params(values)
  return { capacity = values[1], window_ms = values[2] }
end

-- The entries still inside the window, oldest first, and what they add up to.
local function entries(p, key)
  local raw = call('ZRANGEBYSCORE', key, '(' .. format('%.17g', now - p.window_ms), '+inf', 'WITHSCORES')
  local members, times, costs, used = {}, {}, {}, 0
  for j = 1, #raw, 2 do
    local cost = tonumber(match(raw[j], '|([^|]+)$'))
    members[#members + 1], times[#times + 1], costs[#costs + 1] = raw[j], tonumber(raw[j + 1]), cost
    used = used + cost
  end
  return members, times, costs, used
end

local function result(p, allowed, retry_ms, used, newest, change)
  local reset_ms = 0
  if newest then reset_ms = newest + p.window_ms - now end
  return allowed, p.capacity - used, reset_ms, retry_ms, change
end

function log.check(p, cost, op)
  local members, times, costs, used = entries(p, op.key)
  local limit = p.capacity
  local newest = times[#times]
  if fits(used, cost, limit) then
    local change = nil
    if cost > 0 then
      if not op.peek then change = { add = op.id .. '|' .. numtext(cost), at = now } end
      used, newest = used + cost, now
    end
    return result(p, true, 0, used, newest, change)
  end
  local retry_ms = INF
  if fits(0, cost, limit) then
    local left = used
    for j = 1, #members do
      left = left - costs[j]
      if fits(left, cost, limit) then
        retry_ms = times[j] + p.window_ms - now
        break
      end
    end
  end
  return result(p, false, retry_ms, used, newest, nil)
end

-- A charge above the estimate is an entry of its own ("id+"); a refund takes from the
-- reservation's entry, found by the cost it charged.
function log.adjust(p, delta, op)
  local members, times, costs, used = entries(p, op.key)
  local newest = times[#times]
  local change = nil
  if delta >= 0 then
    if delta > 0 then
      change = { add = op.id .. '+|' .. numtext(delta), at = now }
      used, newest = used + delta, now
    end
    return result(p, true, 0, used, newest, change)
  end
  local member = op.id .. '|' .. numtext(op.charged)
  for j = 1, #members do
    if members[j] == member then
      local left = costs[j] + delta
      if left < 0 then left = 0 end
      change = { remove = member, at = times[j] }
      if left > 0 then change.add = op.id .. '|' .. numtext(left) end
      used = used - (costs[j] - left)
      newest = nil
      for k = 1, #members do
        if (k ~= j or left > 0) and (not newest or times[k] > newest) then newest = times[k] end
      end
      break
    end
  end
  return result(p, true, 0, used, newest, change)
end

function log.write(p, key, change, reset_ms)
  call('ZREMRANGEBYSCORE', key, '-inf', format('%.17g', now - p.window_ms))
  if change then
    if change.remove then call('ZREM', key, change.remove) end
    if change.add then call('ZADD', key, format('%.17g', change.at), change.add) end
  end
  if reset_ms > 0 and call('EXISTS', key) == 1 then
    call('PEXPIRE', key, px(reset_ms))
  else
    call('DEL', key)
  end
end

return log
