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
-- A state key the batch writes a second time is written no more until the batch is done (the end
-- of apply.lua): a hot subject's ops in one batch (one client hammering one key) then cost two
-- SETs, not one each — a SET called from Lua costs Redis more than deciding the op —, and their
-- numbers are neither packed nor unpacked between them. (The first write is made at once: a
-- batch's keys are mostly distinct, and staging each one cost more than it saved.) STAGED maps
-- such a key to its place i, in the order staged; by place, in arrays kept from batch to batch
-- (no table made per key): STAGED_KEY, STAGED_MS its TTL (false: delete it), STAGED_POLICY its
-- layout, STAGED_AT where its numbers start in STAGED_NUMBERS.
local STAGED, nstaged, nnumbers = {}, 0, 0
local STAGED_KEY, STAGED_MS, STAGED_POLICY, STAGED_AT, STAGED_NUMBERS = {}, {}, {}, {}, {}

-- Where the numbers of a staged state key start in STAGED_NUMBERS (filled by the caller).
local function staged_at(key, policy, ms)
  local i = STAGED[key]
  if not i then
    nstaged = nstaged + 1
    i = nstaged
    STAGED[key], STAGED_KEY[i], STAGED_AT[i] = i, key, nnumbers
    nnumbers = nnumbers + policy.width
  end
  STAGED_MS[i], STAGED_POLICY[i] = ms, policy
  return STAGED_AT[i]
end

-- Stages a state key's numbers, src[from + 1 .. from + width], to live `ms` once written.
local function stage_numbers(key, policy, ms, src, from)
  local at = staged_at(key, policy, ms)
  for k = 1, policy.width do STAGED_NUMBERS[at + k] = src[from + k] end
end

-- Deletes a state key: at once the first time the batch writes it, else when the batch is done.
local function delete_state(key, policy)
  if WRITTEN[key] == nil then
    call('DEL', key)
    WRITTEN[key] = false
  else
    staged_at(key, policy, false)
  end
end

-- What the part's limits of width > 0 hold now; a full limit keeps zeros.
local PACKED_OUT = {}
local function write_state(policy, first, base, key)
  local single = policy.single
  if single then
    -- One limit keeps numbers here (the common case): they start at the part's first position.
    local reset_ms = RESET_MS[first + single]
    if reset_ms > 0 then
      if WRITTEN[key] == nil then
        local text = pack(policy.format, NEXT[base + 1], NEXT[base + 2], NEXT[base + 3])
        call('SET', key, text, 'PX', px(reset_ms))
        WRITTEN[key] = text
      else
        stage_numbers(key, policy, reset_ms, NEXT, base)
      end
    else
      delete_state(key, policy)
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
    if WRITTEN[key] == nil then
      local text = pack(policy.format, unpack(PACKED_OUT, 1, policy.width))
      call('SET', key, text, 'PX', px(longest))
      WRITTEN[key] = text
    else
      stage_numbers(key, policy, longest, PACKED_OUT, 0)
    end
  else
    delete_state(key, policy)
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
      if policy.packed then delete_state(state_key, policy) else call('DEL', state_key) end
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
    local v
    local staged = STAGED[state_key]
    if staged then
      -- What an op before it in this batch left (a TTL of false: deleted, every limit full).
      if STAGED_MS[staged] then
        local at, width = STAGED_AT[staged], policy.width
        if policy.single then stored = ONE_STORED else stored = {} end
        for k = 1, width do stored[k] = STAGED_NUMBERS[at + k] end
      end
    else
      v = WRITTEN[state_key]
      if v == nil then v = PREFETCHED[index] end
    end
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
