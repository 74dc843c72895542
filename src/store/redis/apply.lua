-- sluice: apply a batch of limiter ops atomically, each op all or nothing.
-- The semantics mirror src/core/*.ts and src/store/memory.ts; the contract suite holds both to them.
-- Written for speed: Redis runs this for every decision, so it reuses its tables, parses each
-- policy and op header once per batch, reads every state key of the batch with one MGET, and
-- keeps numbers binary both in stored state and in its reply (no decimal formatting or parsing).
-- script.ts runs it as a Redis Function (the definitions below made once per load, apply() per
-- call) or, without Functions, as a script ending in `return apply(KEYS, ARGV)`.
--
-- ARGV: nPolicies, then per policy:
--   nLimits blockFlag [after withinMs forgetMs nDurations d1..dn] nLimits x (kind a b)
-- then nOps, nBlockKeys, then per op:
--   header [id] [chargedAt] nLimits x cost [nLimits x charged]
--   header = mode, policy index, then ':' and the alert threshold when the op reports alerts
--   ("c1", "r2:0.8"); id only when the policy has a sliding log or concurrency limit;
--   chargedAt ('' for now) and charged only in adjust modes.
-- KEYS: every op's state key (in op order), then the block key of every op whose policy blocks
--   (in op order), then per op: the keys of its sliding-log and concurrency limits (in limit
--   order), then nLimits alert marker keys when the op reports alerts, then the strikes key when
--   the policy blocks.
-- modes: c consume, r reserve (takes a lease), a adjust, A adjust + release lease, p peek,
--   x reset, u unblock. kinds: b token bucket (GCRA; a = capacity, b = ms per unit),
--   f fixed window, s sliding window counter, l sliding log (a = limit, b = window ms),
--   c concurrency (a = limit, b = lease ms).
-- Reply: { results, error messages... }. results is binary: little-endian doubles (nothing to
--   format here or parse in Node): now in ms, then per op: status (1 allowed, 0 denied, +2 when
--   this denial started a block; -k when the op failed with the k-th error message), blockedMs,
--   then per limit: flags (1 allowed, +2 alerted), remaining, resetMs, retryAfterMs (inf for
--   never). Times are whole milliseconds, rounded up.
-- Stored states: one string under the state key for every token bucket and window, so that a
--   decision costs one read (in the batch's MGET) and one SET whatever the number of such limits: little-endian doubles
--   packed with `struct` (no decimal text to format or parse), per such limit in order: a token
--   bucket's TAT in ms; a fixed window's start and count; a sliding window's start, current and
--   previous counts. Zeros stand for a full limit. The state key's name carries a signature of the
--   policy's limit names and kinds (and of this layout), so a policy whose set of limits changed
--   reads a fresh key. The key lives until its slowest limit is full. Sliding logs and concurrency
--   leases are sorted sets under their own keys.

local EPSILON_MS = 0.001
local INF = math.huge
local floor, ceil = math.floor, math.ceil
local call, format, match = redis.call, string.format, string.match
local pack, unpack_state = struct.pack, struct.unpack

-- Redis's clock for the batch being applied: set first thing by apply() (below).
local now

-- Exact text for a stored number: integers as such (cheap, and Redis keeps them as integers).
local function numtext(x)
  if x == floor(x) and x > -9e15 and x < 9e15 then return format('%d', x) end
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

local function fits(used, cost, limit)
  return used + cost <= limit + limit * 1e-12
end

-- Per-limit inputs and outputs of the op being applied, reused across ops.
-- P1..P3: the stored state of a token bucket or window (nil when full).
local KIND, A, B, KEY, COST, CHARGED, MARK, P1, P2, P3 = {}, {}, {}, {}, {}, {}, {}, {}, {}, {}
local OK, REM, RST, RTY, S1, S2, S3, CH = {}, {}, {}, {}, {}, {}, {}, {}

-- Each kind fills OK, REM, RST, RTY and the new state (S1..S3 or CH) for limit i.
-- how: 'c' check (and hold a lease when `hold`), 'f' force, 'r' refund, 'p' check for peek.

local function bucket(i, how)
  local T, C, cost = B[i], A[i], COST[i]
  local base = now
  local tat = P1[i]
  if tat and tat > now then base = tat end
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

local function fixed(i, how, chargedAt)
  local L, W, cost = A[i], B[i], COST[i]
  local start = floor(now / W) * W
  local count = 0
  if P1[i] == start then count = P2[i] end
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

local function sliding(i, how, chargedAt)
  local L, W, cost = A[i], B[i], COST[i]
  local start = floor(now / W) * W
  local curr, prev = 0, 0
  local s = P1[i]
  if s == start then
    curr, prev = P2[i], P3[i]
  elseif s == start - W then
    prev = P2[i]
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

-- State and block values: read for the whole batch with one MGET (PREFETCHED, by position in
-- KEYS), and what this batch wrote since (WRITTEN, by key; false once deleted), so that an op sees
-- the ops before it.
local PREFETCHED, WRITTEN, OP = {}, {}, 0

local KINDS = { b = bucket, f = fixed, s = sliding, l = log, c = leases }
-- Limits kept under the state key: how many doubles each stores (its S1..S3 in order); the
-- others write their own key.
local WIDTHS = { b = 1, f = 2, s = 3 }
local WRITERS = { l = log_write, c = leases_write }

local OUT = {}
local function write_state(stateKey, n, policy)
  local text, longest = nil, 0
  local single = policy.single
  if single then
    longest = RST[single]
    if longest > 0 then text = pack(policy.format, S1[single], S2[single], S3[single]) end
  else
    local at = 1
    for i = 1, n do
      local width = WIDTHS[KIND[i]]
      if width then
        if RST[i] > 0 then
          OUT[at], OUT[at + 1], OUT[at + 2] = S1[i], S2[i], S3[i]
          if RST[i] > longest then longest = RST[i] end
        else
          OUT[at], OUT[at + 1], OUT[at + 2] = 0, 0, 0
        end
        at = at + width
      end
    end
    if longest > 0 then text = pack(policy.format, unpack(OUT, 1, at - 1)) end
  end
  if text then
    call('SET', stateKey, text, 'PX', px(longest))
    WRITTEN[stateKey] = text
  else
    call('DEL', stateKey)
    WRITTEN[stateKey] = false
  end
end

-- Fills P1..P3 from a state value (false or nil: every limit full; a limit's zeros read as full).
-- A limit that keeps no state there, or is full, gets P1 = nil (which every reader checks first).
local function read_state(v, n, policy)
  if v and #v ~= policy.bytes then
    error('state key holds ' .. #v .. ' bytes where this policy keeps ' .. policy.bytes)
  end
  local single = policy.single
  if single then
    -- struct.unpack returns the values, then the next position (which P2 or P3 may hold: unused).
    if v then P1[single], P2[single], P3[single] = unpack_state(policy.format, v) else P1[single] = nil end
    return
  end
  local values = v and { unpack_state(policy.format, v) }
  local at = 1
  for i = 1, n do
    local width = WIDTHS[KIND[i]]
    if width and values then
      P1[i], P2[i], P3[i] = values[at], values[at + 1], values[at + 2]
      at = at + width
    else
      P1[i] = nil
    end
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
      WRITTEN[stateKey] = false
      for i = 1, n do
        if KEY[i] then call('DEL', KEY[i]) end
        if MARK[i] then call('DEL', MARK[i]) end
      end
    end
    if block then
      call('DEL', block.key, block.strikes)
      WRITTEN[block.key] = false
    end
    mode = 'p'
    for i = 1, n do COST[i] = 0 end
  end

  local adjusting = mode == 'a' or mode == 'A'
  local allowed = true
  local scalars = policy.scalars
  if scalars then
    local v = WRITTEN[stateKey]
    if v == nil then v = PREFETCHED[OP] end
    read_state(v, n, policy)
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
    local v = WRITTEN[block.key]
    if v == nil then v = PREFETCHED[block.at] end
    if v then
      local u, lv = match(v, '^([^:]+):(.+)$')
      u = tonumber(u)
      blockLevel = tonumber(lv)
      if u > now then blockedMs = u - now end
    end
  end
  if blockedMs > 0 then allowed = false end

  if adjusting or (allowed and mode ~= 'p') then
    if scalars then write_state(stateKey, n, policy) end
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
        local value = format('%.17g', now + duration) .. ':' .. level
        call('SET', block.key, value, 'PX', px(duration + block.forget))
        WRITTEN[block.key] = value
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
  return status, ceil(blockedMs)
end

-- Applies one batch: KEYS and ARGV as described at the top. The definitions above are made once
-- per call of the script (EVALSHA) or once per load of the library (FCALL); everything a batch
-- reads or writes is reset here.
local function apply(KEYS, ARGV)
  local t = call('TIME')
  now = (tonumber(t[1]) * 1000000 + tonumber(t[2])) / 1000
  PREFETCHED, WRITTEN, OP = {}, {}, 0

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
    local width = 0
    for i = 1, n do
      local kind = ARGV[ai]
      policy.kinds[i], policy.a[i], policy.b[i] = kind, tonumber(ARGV[ai + 1]), tonumber(ARGV[ai + 2])
      if kind == 'l' or kind == 'c' then policy.ids = true end
      if WIDTHS[kind] then
        if policy.scalars then policy.single = nil else policy.scalars, policy.single = true, i end
        width = width + WIDTHS[kind]
      end
      ai = ai + 3
    end
    policy.width, policy.bytes, policy.format = width, 8 * width, '<' .. string.rep('d', width)
    policies[p] = policy
  end

  local nops, nblocks = tonumber(ARGV[ai]), tonumber(ARGV[ai + 1])
  ai = ai + 2
  -- The state keys and block keys of the whole batch in one MGET, a thousand at a time (Lua's
  -- unpack limit).
  for from = 1, nops + nblocks, 1000 do
    local to = from + 999
    if to > nops + nblocks then to = nops + nblocks end
    local values = call('MGET', unpack(KEYS, from, to))
    for k = 1, #values do PREFETCHED[from + k - 1] = values[k] end
  end

  -- Costs repeat (1 request, the same estimate): each distinct text is parsed once per batch.
  local NUMBERS = {}

  -- Op headers: parsed once per batch.
  local CLASSES = {}
  local function class_of(header)
    local c = CLASSES[header]
    if c then return c end
    local mode, p, alert = match(header, '^(%a)(%d+):?(.*)$')
    c = { mode = mode, policy = policies[tonumber(p)], alert = tonumber(alert), markers = alert ~= '' }
    CLASSES[header] = c
    return c
  end

  -- Every number of the results, in order; packed once at the end.
  local RV, nv, errors = { now }, 1, {}
  local ki = nops + nblocks + 1
  local bi = nops + 1
  local current = nil
  for op = 1, nops do
    OP = op
    local header = ARGV[ai]
    local class = CLASSES[header] or class_of(header)
    local mode, policy, alert = class.mode, class.policy, class.alert
    ai = ai + 1
    local id = ''
    if policy.ids then
      id = ARGV[ai]
      ai = ai + 1
    end
    local chargedAt = now
    local adjusting = mode == 'a' or mode == 'A'
    if adjusting then
      chargedAt = tonumber(ARGV[ai]) or now
      ai = ai + 1
    end
    local n = policy.n
    if policy ~= current then
      local kinds, pa, pb = policy.kinds, policy.a, policy.b
      for i = 1, n do KIND[i], A[i], B[i] = kinds[i], pa[i], pb[i] end
      current = policy
    end
    local stateKey = KEYS[op]
    for i = 1, n do
      local text = ARGV[ai]
      local cost = NUMBERS[text]
      if not cost then
        cost = tonumber(text)
        NUMBERS[text] = cost
      end
      COST[i] = cost
      ai = ai + 1
      local kind = KIND[i]
      if kind == 'l' or kind == 'c' then
        KEY[i] = KEYS[ki]
        ki = ki + 1
      else
        KEY[i] = nil
      end
    end
    if adjusting then
      for i = 1, n do
        CHARGED[i] = tonumber(ARGV[ai])
        ai = ai + 1
      end
    end
    for i = 1, n do
      if class.markers then
        MARK[i] = KEYS[ki]
        ki = ki + 1
      else
        MARK[i] = nil
      end
    end
    local block = policy.block
    if block then
      block.key, block.at, block.strikes = KEYS[bi], bi, KEYS[ki]
      bi = bi + 1
      ki = ki + 1
    end
    local ok, status, blockedMs = pcall(run_op, mode, id, chargedAt, n, alert, block, stateKey, policy)
    if ok then
      RV[nv + 1], RV[nv + 2] = status, blockedMs
      nv = nv + 2
      for i = 1, n do
        RV[nv + 1], RV[nv + 2], RV[nv + 3], RV[nv + 4] = FLAGS[i], REM[i], ceil(RST[i]), ceil(RTY[i])
        nv = nv + 4
      end
    else
      local message = status
      if type(message) == 'table' then message = message.err or 'error' end
      errors[#errors + 1] = tostring(message)
      RV[nv + 1] = -#errors
      for i = 2, 2 + 4 * n do RV[nv + i] = 0 end
      nv = nv + 2 + 4 * n
    end
  end

  -- struct.pack takes its values on the Lua stack: a few thousand at a time.
  local chunks = {}
  for from = 1, nv, 4000 do
    local to = from + 3999
    if to > nv then to = nv end
    chunks[#chunks + 1] = pack('<' .. string.rep('d', to - from + 1), unpack(RV, from, to))
  end
  return { table.concat(chunks), unpack(errors) }
end
