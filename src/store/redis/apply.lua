-- sluice: apply a batch of limiter ops atomically, each op all or nothing.
-- The semantics mirror src/core/*.ts and src/store/memory.ts; the contract suite holds both to them.
--
-- ARGV[1] = number of ops. Per op:
--   mode id chargedAt nLimits alertThreshold blockFlag
--   [after withinMs forgetMs nDurations d1..dn]      when blockFlag == '1'
--   nLimits x (kind a b cost [charged])              charged only in adjust modes
-- KEYS per op: nLimits limit keys, then nLimits alert marker keys when alertThreshold is not '',
--   then the block key and the strikes key when blockFlag == '1'.
-- modes: c consume, r reserve (takes a lease), a adjust, A adjust + release lease, p peek,
--   x reset, u unblock. kinds: b token bucket (GCRA), f fixed window, s sliding window counter,
--   l sliding log, c concurrency.
-- Reply: { now, one string per op: "allowed,blockedMs,blockedNow" then per limit
--   ",allowed,remaining,resetMs,retryAfterMs,alerted"; or "E:<message>" }.

local EPSILON_MS = 0.001
local INF = math.huge

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000

local function fmt(x)
  if x == INF then return 'Infinity' end
  return string.format('%.17g', x)
end

local function fits(used, cost, limit)
  return used + cost <= limit + limit * 1e-12
end

local function num(v)
  if v then return tonumber(v) end
  return nil
end

-- Each kind: read(key, l) -> state; check(state, cost, l, id, hold) -> step;
-- force(state, cost, l, id) -> step; refund(state, amount, l, id, chargedAt, charged) -> step;
-- write(key, step, l). A step is { state, allowed, remaining, resetMs, retry }.

-- Token bucket, GCRA: state = theoretical arrival time; l.a = capacity, l.b = ms per unit.
local bucket = {}
function bucket.read(key) return num(redis.call('GET', key)) end
local function bucket_step(tat, l, allowed, retry)
  local ahead = tat - now
  local reset = 0
  if ahead > 0 then reset = ahead end
  return { state = tat, allowed = allowed, remaining = l.a - ahead / l.b, resetMs = reset, retry = retry }
end
function bucket.check(tat, cost, l)
  local base = now
  if tat and tat > now then base = tat end
  local tolerance = l.a * l.b
  local nxt = base + cost * l.b
  local ahead = nxt - now
  if ahead <= tolerance + EPSILON_MS then return bucket_step(nxt, l, true, 0) end
  local retry = ahead - tolerance
  if cost * l.b > tolerance + EPSILON_MS then retry = INF end
  return bucket_step(base, l, false, retry)
end
function bucket.force(tat, cost, l)
  local base = now
  if tat and tat > now then base = tat end
  return bucket_step(base + cost * l.b, l, true, 0)
end
function bucket.refund(tat, amount, l)
  local base = now
  if tat and tat > now then base = tat end
  local nxt = base - amount * l.b
  if nxt < now then nxt = now end
  return bucket_step(nxt, l, true, 0)
end
function bucket.write(key, s)
  if s.resetMs > 0 then
    redis.call('SET', key, fmt(s.state), 'PX', math.ceil(s.resetMs))
  else
    redis.call('DEL', key)
  end
end

-- Fixed window: state = { start, count }; l.a = limit, l.b = window ms.
local fixed = {}
local function window_start(l) return math.floor(now / l.b) * l.b end
function fixed.read(key, l)
  local v = redis.call('GET', key)
  local start = window_start(l)
  if v then
    local s, c = string.match(v, '^([^:]+):([^:]+)$')
    if tonumber(s) == start then return { start = start, count = tonumber(c) } end
  end
  return { start = start, count = 0 }
end
local function fixed_step(s, l, allowed, retry)
  local reset = 0
  if s.count > 0 then reset = s.start + l.b - now end
  return { state = s, allowed = allowed, remaining = l.a - s.count, resetMs = reset, retry = retry }
end
function fixed.check(s, cost, l)
  if fits(s.count, cost, l.a) then
    return fixed_step({ start = s.start, count = s.count + cost }, l, true, 0)
  end
  local retry = INF
  if fits(0, cost, l.a) then retry = s.start + l.b - now end
  return fixed_step(s, l, false, retry)
end
function fixed.force(s, cost, l)
  return fixed_step({ start = s.start, count = s.count + cost }, l, true, 0)
end
function fixed.refund(s, amount, l, id, chargedAt)
  if chargedAt < s.start then return fixed_step(s, l, true, 0) end
  local c = s.count - amount
  if c < 0 then c = 0 end
  return fixed_step({ start = s.start, count = c }, l, true, 0)
end
function fixed.write(key, s)
  if s.resetMs > 0 then
    redis.call('SET', key, fmt(s.state.start) .. ':' .. fmt(s.state.count), 'PX', math.ceil(s.resetMs))
  else
    redis.call('DEL', key)
  end
end

-- Sliding window counter: state = { start, curr, prev }; l.a = limit, l.b = window ms.
local sliding = {}
function sliding.read(key, l)
  local v = redis.call('GET', key)
  local start = window_start(l)
  if v then
    local s, c, p = string.match(v, '^([^:]+):([^:]+):([^:]+)$')
    s = tonumber(s)
    if s == start then return { start = start, curr = tonumber(c), prev = tonumber(p) } end
    if s == start - l.b then return { start = start, curr = 0, prev = tonumber(c) } end
  end
  return { start = start, curr = 0, prev = 0 }
end
local function estimate(s, l)
  if s.prev == 0 then return s.curr end
  return s.prev * (s.start + l.b - now) / l.b + s.curr
end
local function sliding_step(s, l, allowed, retry)
  local reset = 0
  if s.curr > 0 then
    reset = s.start + 2 * l.b - now
  elseif s.prev > 0 then
    reset = s.start + l.b - now
  end
  return { state = s, allowed = allowed, remaining = l.a - estimate(s, l), resetMs = reset, retry = retry }
end
function sliding.check(s, cost, l)
  if fits(estimate(s, l), cost, l.a) then
    return sliding_step({ start = s.start, curr = s.curr + cost, prev = s.prev }, l, true, 0)
  end
  local retry = INF
  if fits(0, cost, l.a) then
    local finish = s.start + l.b
    if fits(s.curr, cost, l.a) then
      local at = finish - l.b * (l.a - s.curr - cost) / s.prev
      retry = math.max(at - now, EPSILON_MS)
    else
      retry = finish + l.b - l.b * (l.a - cost) / s.curr - now
    end
  end
  return sliding_step(s, l, false, retry)
end
function sliding.force(s, cost, l)
  return sliding_step({ start = s.start, curr = s.curr + cost, prev = s.prev }, l, true, 0)
end
function sliding.refund(s, amount, l, id, chargedAt)
  if chargedAt >= s.start then
    local c = s.curr - amount
    if c < 0 then c = 0 end
    return sliding_step({ start = s.start, curr = c, prev = s.prev }, l, true, 0)
  end
  if chargedAt >= s.start - l.b then
    local p = s.prev - amount
    if p < 0 then p = 0 end
    return sliding_step({ start = s.start, curr = s.curr, prev = p }, l, true, 0)
  end
  return sliding_step(s, l, true, 0)
end
function sliding.write(key, s)
  if s.resetMs > 0 then
    local v = fmt(s.state.start) .. ':' .. fmt(s.state.curr) .. ':' .. fmt(s.state.prev)
    redis.call('SET', key, v, 'PX', math.ceil(s.resetMs))
  else
    redis.call('DEL', key)
  end
end

-- Sliding log: a sorted set, member "id|cost", score = time; l.a = limit, l.b = window ms.
-- A step carries the change to make: add = { id, cost } or set = { old member, new cost }.
local log = {}
function log.read(key, l)
  local raw = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(now - l.b), '+inf', 'WITHSCORES')
  local entries, used = {}, 0
  for i = 1, #raw, 2 do
    local cost = tonumber(string.match(raw[i], '|([^|]+)$'))
    entries[#entries + 1] = { member = raw[i], at = tonumber(raw[i + 1]), cost = cost }
    used = used + cost
  end
  return { entries = entries, used = used }
end
local function log_step(s, l, used, newest, allowed, retry, change)
  local reset = 0
  if newest then reset = newest + l.b - now end
  return { state = s, allowed = allowed, remaining = l.a - used, resetMs = reset, retry = retry, change = change }
end
local function log_newest(s)
  local e = s.entries[#s.entries]
  if e then return e.at end
  return nil
end
function log.check(s, cost, l, id)
  if fits(s.used, cost, l.a) then
    if cost > 0 then
      return log_step(s, l, s.used + cost, now, true, 0, { add = id .. '|' .. fmt(cost) })
    end
    return log_step(s, l, s.used, log_newest(s), true, 0, nil)
  end
  local retry = INF
  if fits(0, cost, l.a) then
    local used = s.used
    for _, e in ipairs(s.entries) do
      used = used - e.cost
      if fits(used, cost, l.a) then
        retry = e.at + l.b - now
        break
      end
    end
  end
  return log_step(s, l, s.used, log_newest(s), false, retry, nil)
end
function log.force(s, cost, l, id)
  if cost > 0 then
    return log_step(s, l, s.used + cost, now, true, 0, { add = id .. '+|' .. fmt(cost) })
  end
  return log_step(s, l, s.used, log_newest(s), true, 0, nil)
end
function log.refund(s, amount, l, id, chargedAt, charged)
  local member = id .. '|' .. fmt(charged)
  for _, e in ipairs(s.entries) do
    if e.member == member then
      local left = e.cost - amount
      if left < 0 then left = 0 end
      local change = { remove = member, at = e.at }
      if left > 0 then change.add = id .. '|' .. fmt(left) end
      local newest = nil
      for _, o in ipairs(s.entries) do
        if (o ~= e or left > 0) and (not newest or o.at > newest) then newest = o.at end
      end
      return log_step(s, l, s.used - (e.cost - left), newest, true, 0, change)
    end
  end
  return log_step(s, l, s.used, log_newest(s), true, 0, nil)
end
function log.write(key, s, l)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now - l.b))
  local c = s.change
  if c then
    if c.remove then redis.call('ZREM', key, c.remove) end
    if c.add then redis.call('ZADD', key, fmt(c.at or now), c.add) end
  end
  if s.resetMs > 0 and redis.call('EXISTS', key) == 1 then
    redis.call('PEXPIRE', key, math.ceil(s.resetMs))
  else
    redis.call('DEL', key)
  end
end

-- Concurrency: a sorted set of leases, member = lease id, score = expiry; l.a = limit, l.b = lease ms.
local leases = {}
function leases.read(key)
  local raw = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(now), '+inf', 'WITHSCORES')
  local expiries, ids = {}, {}
  for i = 1, #raw, 2 do
    local expiry = tonumber(raw[i + 1])
    ids[raw[i]] = expiry
    expiries[#expiries + 1] = expiry
  end
  return { ids = ids, expiries = expiries, size = #expiries }
end
local function leases_step(s, l, size, last, allowed, retry, change)
  local reset = 0
  if last and last > now then reset = last - now end
  return { state = s, allowed = allowed, remaining = l.a - size, resetMs = reset, retry = retry, change = change }
end
local function leases_last(s)
  return s.expiries[#s.expiries]
end
function leases.check(s, slots, l, id, hold)
  if not fits(s.size, slots, l.a) then
    local retry = INF
    if fits(0, slots, l.a) then retry = s.expiries[s.size + slots - l.a] - now end
    return leases_step(s, l, s.size, leases_last(s), false, retry, nil)
  end
  if hold and slots > 0 then
    local expiry = now + l.b
    local last = leases_last(s)
    if not last or expiry > last then last = expiry end
    return leases_step(s, l, s.size + 1, last, true, 0, { add = id, at = expiry })
  end
  return leases_step(s, l, s.size, leases_last(s), true, 0, nil)
end
function leases.release(s, l, id)
  if not s.ids[id] then return leases_step(s, l, s.size, leases_last(s), true, 0, nil) end
  local last = nil
  for other, expiry in pairs(s.ids) do
    if other ~= id and (not last or expiry > last) then last = expiry end
  end
  return leases_step(s, l, s.size - 1, last, true, 0, { remove = id })
end
function leases.write(key, s)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
  local c = s.change
  if c then
    if c.remove then redis.call('ZREM', key, c.remove) end
    if c.add then redis.call('ZADD', key, fmt(c.at), c.add) end
  end
  if redis.call('EXISTS', key) == 1 then
    local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    redis.call('PEXPIRE', key, math.max(1, math.ceil(tonumber(top[2]) - now)))
  end
end

local kinds = { b = bucket, f = fixed, s = sliding, l = log, c = leases }

local function window_ms(kind, l)
  if kind == 'b' then return l.a * l.b end
  return l.b
end

local function run_op(mode, id, chargedAt, limits, alert, block)
  if mode == 'x' or mode == 'u' then
    if mode == 'x' then
      for _, l in ipairs(limits) do
        redis.call('DEL', l.key)
        if l.marker then redis.call('DEL', l.marker) end
      end
    end
    if block then redis.call('DEL', block.key, block.strikes) end
    mode = 'p'
    for _, l in ipairs(limits) do l.cost = 0 end
  end

  local adjusting = mode == 'a' or mode == 'A'
  local steps, allowed = {}, true
  for i, l in ipairs(limits) do
    local k = kinds[l.kind]
    local state = k.read(l.key, l)
    local s
    if adjusting then
      if l.kind == 'c' then
        if mode == 'A' then s = k.release(state, l, id) else s = k.check(state, 0, l, id, false) end
      elseif l.cost >= 0 then
        s = k.force(state, l.cost, l, id)
      else
        s = k.refund(state, -l.cost, l, id, chargedAt, l.charged)
      end
    else
      s = k.check(state, l.cost, l, id, mode == 'r')
    end
    steps[i] = s
    if not s.allowed then allowed = false end
  end
  if adjusting then allowed = true end

  local blockedMs, blockedNow, blockLevel = 0, false, 0
  if block and not adjusting then
    local v = redis.call('GET', block.key)
    if v then
      local u, lv = string.match(v, '^([^:]+):([^:]+)$')
      u = tonumber(u)
      blockLevel = tonumber(lv)
      if u > now then blockedMs = u - now end
    end
  end
  if blockedMs > 0 then allowed = false end

  if allowed and mode ~= 'p' then
    for i, l in ipairs(limits) do kinds[l.kind].write(l.key, steps[i], l) end
  elseif not allowed and blockedMs == 0 and block and (mode == 'c' or mode == 'r') then
    local never = false
    for _, s in ipairs(steps) do
      if s.retry == INF then never = true end
    end
    if not never then
      local count, since = 0, now
      local v = redis.call('GET', block.strikes)
      if v then
        local c, s = string.match(v, '^([^:]+):([^:]+)$')
        s = tonumber(s)
        if s + block.within > now then
          count, since = tonumber(c), s
        end
      end
      count = count + 1
      if count < block.after then
        redis.call('SET', block.strikes, fmt(count) .. ':' .. fmt(since), 'PX', math.max(1, math.ceil(since + block.within - now)))
      else
        redis.call('DEL', block.strikes)
        local level = math.min(blockLevel + 1, #block.durations)
        local duration = block.durations[level]
        redis.call('SET', block.key, fmt(now + duration) .. ':' .. level, 'PX', math.ceil(duration + block.forget))
        blockedNow = true
        blockedMs = duration
      end
    end
  end

  local out = {}
  if allowed then out[1] = '1' else out[1] = '0' end
  out[2] = fmt(blockedMs)
  if blockedNow then out[3] = '1' else out[3] = '0' end
  for i, l in ipairs(limits) do
    local s = steps[i]
    local alerted = '0'
    if allowed and alert and alert > 0 and (mode == 'c' or mode == 'r') and l.cost > 0 then
      local mark = l.a * alert
      local left = s.remaining
      if l.a - (left + l.cost) < mark and l.a - left >= mark then
        if redis.call('SET', l.marker, '1', 'PX', math.ceil(window_ms(l.kind, l)), 'NX') then alerted = '1' end
      end
    end
    local a = '0'
    if s.allowed then a = '1' end
    out[#out + 1] = a
    out[#out + 1] = fmt(s.remaining)
    out[#out + 1] = fmt(s.resetMs)
    out[#out + 1] = fmt(s.retry)
    out[#out + 1] = alerted
  end
  return table.concat(out, ',')
end

local reply = { fmt(now) }
local ai, ki = 2, 1
for op = 1, tonumber(ARGV[1]) do
  local mode, id, chargedAt = ARGV[ai], ARGV[ai + 1], tonumber(ARGV[ai + 2]) or now
  local n, alert, hasBlock = tonumber(ARGV[ai + 3]), tonumber(ARGV[ai + 4]), ARGV[ai + 5] == '1'
  ai = ai + 6
  local block = nil
  if hasBlock then
    block = { after = tonumber(ARGV[ai]), within = tonumber(ARGV[ai + 1]), forget = tonumber(ARGV[ai + 2]), durations = {} }
    local nd = tonumber(ARGV[ai + 3])
    for d = 1, nd do block.durations[d] = tonumber(ARGV[ai + 3 + d]) end
    ai = ai + 4 + nd
  end
  local adjusting = mode == 'a' or mode == 'A'
  local limits = {}
  for i = 1, n do
    local l = { kind = ARGV[ai], a = tonumber(ARGV[ai + 1]), b = tonumber(ARGV[ai + 2]), cost = tonumber(ARGV[ai + 3]), key = KEYS[ki] }
    ai = ai + 4
    if adjusting then
      l.charged = tonumber(ARGV[ai])
      ai = ai + 1
    end
    limits[i] = l
    ki = ki + 1
  end
  if alert then
    for i = 1, n do
      limits[i].marker = KEYS[ki]
      ki = ki + 1
    end
  end
  if block then
    block.key, block.strikes = KEYS[ki], KEYS[ki + 1]
    ki = ki + 2
  end
  local ok, res = pcall(run_op, mode, id, chargedAt, limits, alert, block)
  if ok then
    reply[op + 1] = res
  elseif type(res) == 'table' then
    reply[op + 1] = 'E:' .. tostring(res.err or res)
  else
    reply[op + 1] = 'E:' .. tostring(res)
  end
end
return reply
