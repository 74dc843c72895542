-- sluice: apply a batch of limiter ops atomically, each op all or nothing.
-- The semantics mirror src/core/*.ts and src/store/memory.ts; the contract suite holds both to them.
-- Written for speed: Redis runs this for every decision, so it reuses its tables, parses each
-- policy once per batch and answers with integers (no number formatting on the way out).
--
-- ARGV: nPolicies, then per policy:
--   nLimits blockFlag [after withinMs forgetMs nDurations d1..dn] nLimits x (kind a b)
-- then nOps, then per op:
--   mode id chargedAt policyIndex alertThreshold nLimits x cost [nLimits x charged]
--   (chargedAt and alertThreshold may be ''; charged only in adjust modes)
-- KEYS per op: the state key, then the keys of the sliding-log and concurrency limits (in limit
--   order), then nLimits alert marker keys when alertThreshold is not '', then the block key and
--   the strikes key when the policy blocks.
-- modes: c consume, r reserve (takes a lease), a adjust, A adjust + release lease, p peek,
--   x reset, u unblock. kinds: b token bucket (GCRA; a = capacity, b = ms per unit),
--   f fixed window, s sliding window counter, l sliding log (a = limit, b = window ms),
--   c concurrency (a = limit, b = lease ms).
-- Reply: { now in µs, then per op: status (1 allowed, 0 denied, +2 when this denial started a
--   block; or "E:<message>"), blockedMs, then per limit: flags (1 allowed, +2 alerted),
--   remaining in millionths of a unit, rounded to nearest (a string when too large for that), resetMs, retryAfterMs
--   (-1 for never) }. Times are whole milliseconds, rounded up.
-- Stored states: one string under the state key for every token bucket and window, so that a
--   decision costs one GET and one SET whatever the number of such limits:
--   "state|state…", one field per such limit in order (empty when full), with a token bucket's
--   state "TAT in µs", a fixed window's "start:count", a sliding window's "start:curr:prev". The
--   state key's name carries a signature of the policy's limit names and kinds, so a policy whose
--   set of limits changed reads a fresh key. The key lives until its slowest limit is full. Sliding logs and concurrency leases are sorted sets
--   under their own keys.

local EPSILON_MS = 0.001
local INF = math.huge
local floor, ceil = math.floor, math.ceil
local call, format, match = redis.call, string.format, string.match

local t = call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = now_us / 1000

-- Exact text for a stored number: integers as such (cheap, and Redis keeps them as integers).
local function numtext(x)
  if x == floor(x) and x > -1e15 and x < 1e15 then return format('%d', x) end
  return format('%.17g', x)
end

-- A TTL argument: whole ms, at least 1, at most ~31,000 years (a bucket that refills once an
-- aeon still gets a TTL Redis accepts), written as digits (a Lua number would become "1e+15").
local MAX_TTL_MS = 1e15
local function px(ms)
  ms = ceil(ms)
  if ms < 1 then ms = 1 elseif ms > MAX_TTL_MS then ms = MAX_TTL_MS end
  return format('%d', ms)
end

-- A time in a reply: whole ms, capped where a double still holds every integer.
local function whole(ms)
  ms = ceil(ms)
  if ms > 9e15 then return 9e15 end
  return ms
end

local function fits(used, cost, limit)
  return used + cost <= limit + limit * 1e-12
end

-- Per-limit inputs and outputs of the op being applied, reused across ops.
local KIND, A, B, KEY, COST, CHARGED, MARK, FIELD = {}, {}, {}, {}, {}, {}, {}, {}
local OK, REM, RST, RTY, S1, S2, S3, CH = {}, {}, {}, {}, {}, {}, {}, {}

-- Each kind fills OK, REM, RST, RTY and the new state (S1..S3 or CH) for limit i.
-- how: 'c' check (and hold a lease when `hold`), 'f' force, 'r' refund, 'p' check for peek.

local function bucket(i, how)
  local T, C, cost = B[i], A[i], COST[i]
  local v = FIELD[i]
  local base = now
  if v then
    local tat = tonumber(v) / 1000
    if tat > now then base = tat end
  end
  local nxt, ok, retry = base, true, 0
  if how == 'f' then
    nxt = base + cost * T
  elseif how == 'r' then
    nxt = base - cost * T
    if nxt < now then nxt = now end
  else
    local tolerance = C * T
    nxt = base + cost * T
    if nxt - now > tolerance + EPSILON_MS then
      ok = false
      if cost * T > tolerance + EPSILON_MS then retry = INF else retry = nxt - now - tolerance end
      nxt = base
    end
  end
  local ahead = nxt - now
  OK[i], REM[i], RTY[i], S1[i] = ok, C - ahead / T, retry, nxt
  if ahead > 0 then RST[i] = ahead else RST[i] = 0 end
end

local function bucket_text(i)
  return numtext(floor(S1[i] * 1000 + 0.5))
end

local function fixed(i, how, chargedAt)
  local L, W, cost = A[i], B[i], COST[i]
  local start = floor(now / W) * W
  local count = 0
  local v = FIELD[i]
  if v then
    local s, c = match(v, '^([^:]+):(.+)$')
    if tonumber(s) == start then count = tonumber(c) end
  end
  local ok, retry = true, 0
  if how == 'f' then
    count = count + cost
  elseif how == 'r' then
    if chargedAt >= start then
      count = count - cost
      if count < 0 then count = 0 end
    end
  elseif fits(count, cost, L) then
    count = count + cost
  else
    ok = false
    if fits(0, cost, L) then retry = start + W - now else retry = INF end
  end
  OK[i], REM[i], RTY[i], S1[i], S2[i] = ok, L - count, retry, start, count
  if count > 0 then RST[i] = start + W - now else RST[i] = 0 end
end

local function fixed_text(i)
  return format('%d', S1[i]) .. ':' .. numtext(S2[i])
end

local function sliding(i, how, chargedAt)
  local L, W, cost = A[i], B[i], COST[i]
  local start = floor(now / W) * W
  local curr, prev = 0, 0
  local v = FIELD[i]
  if v then
    local s, c, p = match(v, '^([^:]+):([^:]+):(.+)$')
    s = tonumber(s)
    if s == start then
      curr, prev = tonumber(c), tonumber(p)
    elseif s == start - W then
      prev = tonumber(c)
    end
  end
  local weight = (start + W - now) / W
  local ok, retry = true, 0
  if how == 'f' then
    curr = curr + cost
  elseif how == 'r' then
    if chargedAt >= start then
      curr = curr - cost
      if curr < 0 then curr = 0 end
    elseif chargedAt >= start - W then
      prev = prev - cost
      if prev < 0 then prev = 0 end
    end
  elseif fits(prev * weight + curr, cost, L) then
    curr = curr + cost
  else
    ok = false
    retry = INF
    if fits(0, cost, L) then
      local finish = start + W
      if fits(curr, cost, L) then
        retry = finish - W * (L - curr - cost) / prev - now
        if retry < EPSILON_MS then retry = EPSILON_MS end
      else
        retry = finish + W - W * (L - cost) / curr - now
      end
    end
  end
  OK[i], REM[i], RTY[i], S1[i], S2[i], S3[i] = ok, L - (prev * weight + curr), retry, start, curr, prev
  if curr > 0 then
    RST[i] = start + 2 * W - now
  elseif prev > 0 then
    RST[i] = start + W - now
  else
    RST[i] = 0
  end
end

local function sliding_text(i)
  return format('%d', S1[i]) .. ':' .. numtext(S2[i]) .. ':' .. numtext(S3[i])
end

-- Sliding log: members "id|cost", score = time in ms. CH[i] = { add = member, at = score, remove = member }.
local function log(i, how, chargedAt, id)
  local L, W, cost = A[i], B[i], COST[i]
  local raw = call('ZRANGEBYSCORE', KEY[i], '(' .. format('%.17g', now - W), '+inf', 'WITHSCORES')
  local members, ats, costs, used = {}, {}, {}, 0
  for j = 1, #raw, 2 do
    local c = tonumber(match(raw[j], '|([^|]+)$'))
    members[#members + 1], ats[#ats + 1], costs[#costs + 1] = raw[j], tonumber(raw[j + 1]), c
    used = used + c
  end
  local newest = ats[#ats]
  local ok, retry, change = true, 0, nil
  if how == 'f' then
    if cost > 0 then
      change = { add = id .. '+|' .. numtext(cost), at = now }
      used, newest = used + cost, now
    end
  elseif how == 'r' then
    local member = id .. '|' .. numtext(CHARGED[i])
    for j = 1, #members do
      if members[j] == member then
        local left = costs[j] - cost
        if left < 0 then left = 0 end
        change = { remove = member, at = ats[j] }
        if left > 0 then change.add = id .. '|' .. numtext(left) end
        used = used - (costs[j] - left)
        newest = nil
        for k = 1, #members do
          if (k ~= j or left > 0) and (not newest or ats[k] > newest) then newest = ats[k] end
        end
        break
      end
    end
  elseif fits(used, cost, L) then
    if cost > 0 then
      if how == 'c' then change = { add = id .. '|' .. numtext(cost), at = now } end
      used, newest = used + cost, now
    end
  else
    ok = false
    retry = INF
    if fits(0, cost, L) then
      local left = used
      for j = 1, #members do
        left = left - costs[j]
        if fits(left, cost, L) then
          retry = ats[j] + W - now
          break
        end
      end
    end
  end
  OK[i], REM[i], RTY[i], CH[i] = ok, L - used, retry, change
  if newest then RST[i] = newest + W - now else RST[i] = 0 end
end

local function log_write(i)
  local key = KEY[i]
  call('ZREMRANGEBYSCORE', key, '-inf', format('%.17g', now - B[i]))
  local c = CH[i]
  if c then
    if c.remove then call('ZREM', key, c.remove) end
    if c.add then call('ZADD', key, format('%.17g', c.at), c.add) end
  end
  if RST[i] > 0 and call('EXISTS', key) == 1 then
    call('PEXPIRE', key, px(RST[i]))
  else
    call('DEL', key)
  end
end

-- Concurrency: members = lease ids, score = expiry in ms. CH[i] = { add = id, at = expiry } or { remove = id }.
local function leases(i, how, chargedAt, id, hold, release)
  local L, leaseMs, slots = A[i], B[i], COST[i]
  local raw = call('ZRANGEBYSCORE', KEY[i], '(' .. format('%.17g', now), '+inf', 'WITHSCORES')
  local expiries, mine, size = {}, nil, #raw / 2
  for j = 1, #raw, 2 do
    local e = tonumber(raw[j + 1])
    expiries[#expiries + 1] = e
    if raw[j] == id then mine = e end
  end
  local last = expiries[#expiries]
  local ok, retry, change = true, 0, nil
  if release then
    if mine then
      change = { remove = id }
      size = size - 1
      last = nil
      for j = 1, #raw, 2 do
        if raw[j] ~= id and (not last or expiries[(j + 1) / 2] > last) then last = expiries[(j + 1) / 2] end
      end
    end
  elseif how == 'c' or how == 'p' then
    if not fits(size, slots, L) then
      ok = false
      retry = INF
      if fits(0, slots, L) then retry = expiries[size + slots - L] - now end
    elseif hold and slots > 0 then
      local expiry = now + leaseMs
      change = { add = id, at = expiry }
      size = size + 1
      if not last or expiry > last then last = expiry end
    end
  end
  OK[i], REM[i], RTY[i], CH[i] = ok, L - size, retry, change
  if last and last > now then RST[i] = last - now else RST[i] = 0 end
end

local function leases_write(i)
  local key = KEY[i]
  call('ZREMRANGEBYSCORE', key, '-inf', format('%.17g', now))
  local c = CH[i]
  if c then
    if c.remove then call('ZREM', key, c.remove) end
    if c.add then call('ZADD', key, format('%.17g', c.at), c.add) end
  end
  if call('EXISTS', key) == 1 then
    local top = call('ZRANGE', key, -1, -1, 'WITHSCORES')
    call('PEXPIRE', key, px(tonumber(top[2]) - now))
  end
end

local KINDS = { b = bucket, f = fixed, s = sliding, l = log, c = leases }
-- Limits kept under the state key say how to write their field; the others write their own key.
local TEXTS = { b = bucket_text, f = fixed_text, s = sliding_text }
local WRITERS = { l = log_write, c = leases_write }

local function write_state(stateKey, n)
  local text, longest, first = '', 0, true
  for i = 1, n do
    local totext = TEXTS[KIND[i]]
    if totext then
      local f = ''
      if RST[i] > 0 then
        f = totext(i)
        if RST[i] > longest then longest = RST[i] end
      end
      if first then text, first = f, false else text = text .. '|' .. f end
    end
  end
  if longest > 0 then
    call('SET', stateKey, text, 'PX', px(longest))
  else
    call('DEL', stateKey)
  end
end

local function window_ms(i)
  if KIND[i] == 'b' then return A[i] * B[i] end
  return B[i]
end

-- Applies one op to limits 1..n; returns status, blockedMs, and FLAGS filled per limit.
local FLAGS = {}
local function run_op(mode, id, chargedAt, n, alert, block, stateKey, policy)
  if mode == 'x' or mode == 'u' then
    if mode == 'x' then
      call('DEL', stateKey)
      for i = 1, n do
        if KEY[i] then call('DEL', KEY[i]) end
        if MARK[i] then call('DEL', MARK[i]) end
      end
    end
    if block then call('DEL', block.key, block.strikes) end
    mode = 'p'
    for i = 1, n do COST[i] = 0 end
  end

  local adjusting = mode == 'a' or mode == 'A'
  local allowed = true
  local scalars = policy.scalars
  if scalars then
    local v = call('GET', stateKey)
    if v and policy.single then
      -- One such limit: the value is its field.
      FIELD[policy.single] = v
    else
      local fields = nil
      if v then fields = { match(v, policy.pattern) } end
      local j = 1
      for i = 1, n do
        if TEXTS[KIND[i]] then
          local f = fields and fields[j]
          if f == '' then f = nil end
          FIELD[i] = f
          j = j + 1
        end
      end
    end
  end
  for i = 1, n do
    local kind = KIND[i]
    if adjusting then
      if kind == 'c' then
        leases(i, 'c', chargedAt, id, false, mode == 'A')
      elseif COST[i] >= 0 then
        KINDS[kind](i, 'f', chargedAt, id)
      else
        COST[i] = -COST[i]
        KINDS[kind](i, 'r', chargedAt, id)
      end
    else
      KINDS[kind](i, mode == 'p' and 'p' or 'c', chargedAt, id, mode == 'r', false)
      if not OK[i] then allowed = false end
    end
  end

  local blockedMs, blockedNow, blockLevel = 0, false, 0
  if block and not adjusting then
    local v = call('GET', block.key)
    if v then
      local u, lv = match(v, '^([^:]+):(.+)$')
      u = tonumber(u)
      blockLevel = tonumber(lv)
      if u > now then blockedMs = u - now end
    end
  end
  if blockedMs > 0 then allowed = false end

  if adjusting or (allowed and mode ~= 'p') then
    if scalars then write_state(stateKey, n) end
    for i = 1, n do
      local write = WRITERS[KIND[i]]
      if write then write(i) end
    end
  elseif not allowed and blockedMs == 0 and block and (mode == 'c' or mode == 'r') then
    -- Strikes count denials by a rate limit that waiting would help (see countsAsStrike in memory.ts).
    local strike = false
    for i = 1, n do
      if RTY[i] == INF then
        strike = false
        break
      end
      if not OK[i] and KIND[i] ~= 'c' then strike = true end
    end
    if strike then
      local count, since = 0, now
      local v = call('GET', block.strikes)
      if v then
        local c, s = match(v, '^([^:]+):(.+)$')
        s = tonumber(s)
        if s + block.within > now then count, since = tonumber(c), s end
      end
      count = count + 1
      if count < block.after then
        call('SET', block.strikes, format('%d', count) .. ':' .. format('%.17g', since), 'PX', px(since + block.within - now))
      else
        call('DEL', block.strikes)
        local level = math.min(blockLevel + 1, #block.durations)
        local duration = block.durations[level]
        call('SET', block.key, format('%.17g', now + duration) .. ':' .. level, 'PX', px(duration + block.forget))
        blockedNow = true
        blockedMs = duration
      end
    end
  end

  for i = 1, n do
    local flags = 0
    if OK[i] then flags = 1 end
    if allowed and alert and alert > 0 and (mode == 'c' or mode == 'r') and COST[i] > 0 then
      local mark = A[i] * alert
      local left = REM[i]
      if A[i] - (left + COST[i]) < mark and A[i] - left >= mark then
        if call('SET', MARK[i], '1', 'PX', px(window_ms(i)), 'NX') then flags = flags + 2 end
      end
    end
    FLAGS[i] = flags
  end
  local status = 0
  if allowed then status = 1 end
  if blockedNow then status = status + 2 end
  return status, whole(blockedMs)
end

-- Policies: limit definitions and block settings shared by the ops of this batch.
local ai = 2
local policies = {}
for p = 1, tonumber(ARGV[1]) do
  local n, hasBlock = tonumber(ARGV[ai]), ARGV[ai + 1] == '1'
  ai = ai + 2
  local policy = { n = n, kinds = {}, a = {}, b = {}, scalars = false }
  if hasBlock then
    local block = { after = tonumber(ARGV[ai]), within = tonumber(ARGV[ai + 1]), forget = tonumber(ARGV[ai + 2]), durations = {} }
    local nd = tonumber(ARGV[ai + 3])
    for d = 1, nd do block.durations[d] = tonumber(ARGV[ai + 3 + d]) end
    ai = ai + 4 + nd
    policy.block = block
  end
  local pattern, count = '', 0
  for i = 1, n do
    local kind = ARGV[ai]
    policy.kinds[i], policy.a[i], policy.b[i] = kind, tonumber(ARGV[ai + 1]), tonumber(ARGV[ai + 2])
    if TEXTS[kind] then
      policy.scalars = true
      count = count + 1
      if count == 1 then pattern, policy.single = '([^|]*)', i else pattern, policy.single = pattern .. '|([^|]*)', nil end
    end
    ai = ai + 3
  end
  policy.pattern = '^' .. pattern .. '$'
  policies[p] = policy
end

local reply = { now_us }
local ki = 1
local nops = tonumber(ARGV[ai])
ai = ai + 1
for op = 1, nops do
  local mode, id, chargedAt = ARGV[ai], ARGV[ai + 1], tonumber(ARGV[ai + 2]) or now
  local policy, alert = policies[tonumber(ARGV[ai + 3])], tonumber(ARGV[ai + 4])
  local hasMarkers = ARGV[ai + 4] ~= ''
  ai = ai + 5
  local n = policy.n
  local kinds, pa, pb = policy.kinds, policy.a, policy.b
  local stateKey = KEYS[ki]
  ki = ki + 1
  for i = 1, n do
    local kind = kinds[i]
    KIND[i], A[i], B[i], COST[i] = kind, pa[i], pb[i], tonumber(ARGV[ai])
    ai = ai + 1
    if kind == 'l' or kind == 'c' then
      KEY[i] = KEYS[ki]
      ki = ki + 1
    else
      KEY[i] = nil
    end
  end
  if mode == 'a' or mode == 'A' then
    for i = 1, n do
      CHARGED[i] = tonumber(ARGV[ai])
      ai = ai + 1
    end
  end
  for i = 1, n do
    if hasMarkers then
      MARK[i] = KEYS[ki]
      ki = ki + 1
    else
      MARK[i] = nil
    end
  end
  local block = nil
  if policy.block then
    block = { after = policy.block.after, within = policy.block.within, forget = policy.block.forget,
      durations = policy.block.durations, key = KEYS[ki], strikes = KEYS[ki + 1] }
    ki = ki + 2
  end
  local ok, status, blockedMs = pcall(run_op, mode, id, chargedAt, n, alert, block, stateKey, policy)
  if ok then
    reply[#reply + 1] = status
    reply[#reply + 1] = blockedMs
    for i = 1, n do
      local rem = REM[i] * 1000000
      if rem > -9e15 and rem < 9e15 then rem = floor(rem + 0.5) else rem = format('%.17g', REM[i]) end
      local retry = RTY[i]
      if retry == INF then retry = -1 else retry = whole(retry) end
      reply[#reply + 1] = FLAGS[i]
      reply[#reply + 1] = rem
      reply[#reply + 1] = whole(RST[i])
      reply[#reply + 1] = retry
    end
  else
    local message = status
    if type(message) == 'table' then message = message.err or 'error' end
    reply[#reply + 1] = 'E:' .. tostring(message)
    reply[#reply + 1] = 0
    for i = 1, 4 * n do reply[#reply + 1] = 0 end
  end
end
return reply
