-- sluice: the decision steps of the batch script (apply.lua): the tables a batch fills, how one op
-- (or group of ops) is evaluated and committed, and blocks. Loaded after the prelude and the
-- algorithm parts, before apply.lua, in the same chunk (script.ts): its locals are apply's.

-- Per limit of the op (or group of ops) being applied; a group's parts take consecutive ranges
-- (first + i).
local ALGORITHM, PARAMS, OFFSET, OWN_KEY, COST, CHARGED, MARKER = {}, {}, {}, {}, {}, {}, {}
local ALLOWED, REMAINING, RESET_MS, RETRY_MS, CHANGE, FLAGS = {}, {}, {}, {}, {}, {}
-- The new packed numbers of the group, by position (the part's base + the limit's offset).
local NEXT = {}
-- What a step knows of its op (see the prelude).
local OP = {}
-- The stored numbers of the state key being read: no value, one limit's, or every limit's.
local NOTHING_STORED, ONE_STORED = {}, {}

-- State and block values: read for the whole batch with one MGET (PREFETCHED, by position in
-- KEYS), and what this batch wrote since (WRITTEN, by key; false once deleted), so that an op sees
-- the ops before it.
local PREFETCHED, WRITTEN = {}, {}
-- State keys are written once, when the batch is done (flush_states in apply.lua): a hot
-- subject's ops in one batch (one client hammering one key) then cost one SET, not one each — a
-- SET called from Lua costs Redis more than deciding the op. STAGED_PX holds each staged key's
-- TTL argument (false: delete it), STAGED_ORDER the keys in the order they were first staged.
local STAGED_PX, STAGED_ORDER, nstaged = {}, {}, 0
local function stage(key, text, ttl)
  if STAGED_PX[key] == nil then
    nstaged = nstaged + 1
    STAGED_ORDER[nstaged] = key
  end
  STAGED_PX[key] = ttl
  WRITTEN[key] = text
end

-- Packs what the part's limits of width > 0 hold now; a full limit writes zeros.
local PACKED_OUT = {}
local function write_state(policy, first, base, key)
  local single = policy.single
  if single then
    -- One limit keeps numbers here (the common case): they start at the part's first position.
    local reset_ms = RESET_MS[first + single]
    if reset_ms > 0 then
      stage(key, pack(policy.format, NEXT[base + 1], NEXT[base + 2], NEXT[base + 3]), px(reset_ms))
    else
      stage(key, false, false)
    end
    return
  end
  local longest = 0
  for i = first + 1, first + policy.n do
    local at = OFFSET[i]
    if at > 0 then
      local width = ALGORITHM[i].width
      if RESET_MS[i] > 0 then
        for k = 0, width - 1 do PACKED_OUT[at + k] = NEXT[base + at + k] end
        if RESET_MS[i] > longest then longest = RESET_MS[i] end
      else
        for k = 0, width - 1 do PACKED_OUT[at + k] = 0 end
      end
    end
  end
  if longest > 0 then
    stage(key, pack(policy.format, unpack(PACKED_OUT, 1, policy.width)), px(longest))
  else
    stage(key, false, false)
  end
end

-- Runs the algorithms of one part (an op: its limits at positions first + 1..n, its packed numbers
-- from base + 1): fills the per-limit results; returns whether its limits allow it, its block (ms
-- left and level), and the mode it was decided in (a reset or unblock is then a peek). The parts
-- of an op travel as arguments: a table per op would cost more than the decision.
local function evaluate(index, mode, policy, first, base, state_key, block, id, charged_at)
  local n = policy.n
  if mode == 'x' or mode == 'u' then
    if mode == 'x' then
      stage(state_key, false, false)
      for i = first + 1, first + n do
        if OWN_KEY[i] then call('DEL', OWN_KEY[i]) end
        if MARKER[i] then call('DEL', MARKER[i]) end
      end
    end
    if block then
      call('DEL', block.key, block.strikes)
      WRITTEN[block.key] = false
    end
    mode = 'p'
    for i = first + 1, first + n do COST[i] = 0 end
  end

  local adjusting = mode == 'a' or mode == 'A'
  -- Only logs, leases and adjustments read the op (a check of numbers under the state key does not).
  if adjusting or policy.own_keys or policy.ids then
    OP.id, OP.charged_at = id, charged_at
    OP.hold, OP.peek, OP.release = mode == 'r', mode == 'p', mode == 'A'
  end
  -- The stored numbers of the state key (none: every limit full), read in place (a call less).
  local stored = NOTHING_STORED
  if policy.packed then
    local v = WRITTEN[state_key]
    if v == nil then v = PREFETCHED[index] end
    if v then
      if #v ~= policy.bytes then
        error('state key holds ' .. #v .. ' bytes where this policy keeps ' .. policy.bytes)
      end
      if policy.single then
        -- struct.unpack returns the values, then the next position (which lands in an unused slot).
        ONE_STORED[1], ONE_STORED[2], ONE_STORED[3], ONE_STORED[4] = unpack_state(policy.format, v)
        stored = ONE_STORED
      else
        stored = { unpack_state(policy.format, v) }
      end
    end
  end
  local allowed = true
  for i = first + 1, first + n do
    local algorithm, at = ALGORITHM[i], OFFSET[i]
    local step = algorithm.check
    if adjusting then
      step = algorithm.adjust
      OP.charged = CHARGED[i]
    end
    local ok, remaining, reset_ms, retry_ms, a, b, c
    if at > 0 then
      ok, remaining, reset_ms, retry_ms, a, b, c =
        step(PARAMS[i], COST[i], OP, stored[at], stored[at + 1], stored[at + 2])
      NEXT[base + at], NEXT[base + at + 1], NEXT[base + at + 2] = a, b, c
    else
      OP.key = OWN_KEY[i]
      ok, remaining, reset_ms, retry_ms, a = step(PARAMS[i], COST[i], OP)
      CHANGE[i] = a
    end
    ALLOWED[i], REMAINING[i], RESET_MS[i], RETRY_MS[i] = ok, remaining, reset_ms, retry_ms
    if not ok then allowed = false end
  end
  if adjusting then return true, 0, 0, mode end

  local blocked_ms, level = 0, 0
  if block then
    local v = WRITTEN[block.key]
    if v == nil then v = PREFETCHED[block.at] end
    if v then
      local until_ms, lv = match(v, '^([^:]+):(.+)$')
      until_ms = tonumber(until_ms)
      level = tonumber(lv)
      if until_ms > now then blocked_ms = until_ms - now end
    end
  end
  return allowed, blocked_ms, level, mode
end

-- A denial counts toward a block when waiting would help and a rate limit denied (see
-- countsAsStrike in memory.ts); the `after`-th within the window starts the next block.
-- Returns the length of the block it started, or 0.
local function strike(block, first, n, level)
  local counts = false
  for i = first + 1, first + n do
    if RETRY_MS[i] == INF then return 0 end
    if not ALLOWED[i] and not ALGORITHM[i].in_flight then counts = true end
  end
  if not counts then return 0 end
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
    return 0
  end
  call('DEL', block.strikes)
  local next_level = math.min(level + 1, #block.durations)
  local duration = block.durations[next_level]
  local value = format('%.17g', now + duration) .. ':' .. next_level
  call('SET', block.key, value, 'PX', px(duration + block.forget))
  WRITTEN[block.key] = value
  return duration
end

-- Writes what an admitted part charged (or counts the denial of a part its own limits refused),
-- then sets its limits' flags; returns its status and blockedMs.
local function commit(mode, policy, first, base, state_key, block, alert, allowed, own_allowed, blocked_ms, level)
  local n = policy.n
  local adjusting = mode == 'a' or mode == 'A'
  local blocked_now = false
  if adjusting or (allowed and mode ~= 'p') then
    if policy.packed then write_state(policy, first, base, state_key) end
    if policy.own_keys then
      for i = first + 1, first + n do
        if OFFSET[i] == 0 then ALGORITHM[i].write(PARAMS[i], OWN_KEY[i], CHANGE[i], RESET_MS[i]) end
      end
    end
  elseif not own_allowed and blocked_ms == 0 and block and (mode == 'c' or mode == 'r') then
    local started = strike(block, first, n, level)
    if started > 0 then blocked_now, blocked_ms = true, started end
  end
  for i = first + 1, first + n do
    local flags = 0
    if ALLOWED[i] then flags = 1 end
    if allowed and alert and alert > 0 and (mode == 'c' or mode == 'r') and COST[i] > 0 then
      local p = PARAMS[i]
      local mark, left = p.capacity * alert, REMAINING[i]
      if p.capacity - (left + COST[i]) < mark and p.capacity - left >= mark then
        if call('SET', MARKER[i], '1', 'PX', px(p.window_ms), 'NX') then flags = flags + 2 end
      end
    end
    FLAGS[i] = flags
  end
  local status = 0
  if allowed then status = 1 end
  if blocked_now then status = status + 2 end
  return status, ceil(blocked_ms)
end

-- One op alone (the common case), or the parts of a group kept by part number k: an op and the
-- ops decided with it.
local STATUS, BLOCKED_OUT = {}, {}
local function run_one(index, mode, policy, alert, state_key, block, id, charged_at)
  local ok, blocked_ms, level
  ok, blocked_ms, level, mode = evaluate(index, mode, policy, 0, 0, state_key, block, id, charged_at)
  local allowed = ok and blocked_ms == 0
  if mode == 'a' or mode == 'A' then allowed = true end
  STATUS[1], BLOCKED_OUT[1] = commit(mode, policy, 0, 0, state_key, block, alert, allowed, ok, blocked_ms, level)
end

local PART_INDEX, PART_MODE, PART_POLICY, PART_ALERT, PART_FIRST, PART_BASE = {}, {}, {}, {}, {}, {}
local PART_KEY, PART_BLOCK, PART_ID, PART_CHARGED_AT = {}, {}, {}, {}
local OWN, BLOCKED, LEVEL = {}, {}, {}
-- Decides parts 1..count together: every part admitted, or none charged.
local function run_group(count)
  local allowed = true
  for k = 1, count do
    local ok, blocked_ms, level, mode = evaluate(PART_INDEX[k], PART_MODE[k], PART_POLICY[k], PART_FIRST[k],
      PART_BASE[k], PART_KEY[k], PART_BLOCK[k], PART_ID[k], PART_CHARGED_AT[k])
    PART_MODE[k] = mode
    if blocked_ms > 0 then ok = false end
    OWN[k], BLOCKED[k], LEVEL[k] = ok, blocked_ms, level
    if not ok then allowed = false end
  end
  for k = 1, count do
    local mode = PART_MODE[k]
    if mode == 'a' or mode == 'A' then allowed = true end
    STATUS[k], BLOCKED_OUT[k] = commit(mode, PART_POLICY[k], PART_FIRST[k], PART_BASE[k], PART_KEY[k],
      PART_BLOCK[k], PART_ALERT[k], allowed, OWN[k], BLOCKED[k], LEVEL[k])
  end
end

-- A guarded op (or group) whose queue's marker exists: every part answers status 4, nothing decided.
local WAITING = false
local function waiting(count, limits)
  for k = 1, count do STATUS[k], BLOCKED_OUT[k] = 4, 0 end
  for i = 1, limits do FLAGS[i], REMAINING[i], RESET_MS[i], RETRY_MS[i] = 0, 0, 0, 0 end
end

-- A block's settings and the keys of the op (or part k) that uses it, in a table kept per k.
local BLOCK_SLOTS = {}
local function block_of(k, block, key, at, strikes)
  local b = BLOCK_SLOTS[k]
  if not b then
    b = {}
    BLOCK_SLOTS[k] = b
  end
  b.key, b.at, b.strikes = key, at, strikes
  b.after, b.within, b.forget, b.durations = block.after, block.within, block.forget, block.durations
  return b
end
