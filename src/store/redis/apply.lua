-- sluice: apply a batch of limiter ops atomically, each op (or group of ops) all or nothing.
-- The semantics mirror src/core/*.ts and src/store/memory.ts; the contract suite holds both to them.
-- Written for speed: Redis runs this for every decision, so it reuses its tables, parses each
-- policy and op header once per batch, reads every state key of the batch with one MGET, and
-- keeps numbers binary both in stored state and in its reply (no decimal formatting or parsing).
-- script.ts runs it as a Redis Function (the definitions made once per load, apply() per call)
-- or, without Functions, as a script ending in `return apply(KEYS, ARGV)`. It follows the
-- prelude and the algorithm parts (prelude.lua, lua/*.lua).
--
-- ARGV: nPolicies, then per policy:
--   nLimits blockFlag idFlag [after withinMs forgetMs nDurations d1..dn]
--   then per limit: kind width nParams p1..pn (the algorithm's lua.params)
-- then nOps, nBlockKeys, then per op:
--   header [id] [chargedAt] nLimits x cost [nLimits x charged]
--   header = mode, '+' when the op is decided together with the next one (a group: compose()),
--   policy index, then ':' and the alert threshold when the op reports alerts ("c1", "r+2:0.8");
--   id only when the policy's idFlag is 1; chargedAt ('' for now) and charged only in adjust modes.
-- KEYS: every op's state key (in op order), then the block key of every op whose policy blocks
--   (in op order), then per op: the own keys of its limits of width 0 (in limit order), then
--   nLimits alert marker keys when the op reports alerts, then the strikes key when the policy
--   blocks.
-- modes: c consume, r reserve (takes a lease), a adjust, A adjust + release lease, p peek,
--   x reset, u unblock; C and R: c and r guarded by a queue key (the op's last key; lua/queue.lua):
--   when it exists, the op (or its group) is not decided and its status is 4.
-- Reply: { results, error messages... }. results is binary: little-endian doubles (nothing to
--   format here or parse in Node): now in ms, then per op: status (1 allowed, 0 denied, +2 when
--   this denial started a block; -k when the op failed with the k-th error message), blockedMs,
--   then per limit: flags (1 allowed, +2 alerted), remaining, resetMs, retryAfterMs (inf for
--   never). Times are whole milliseconds, rounded up.
-- Stored states: one string under the state key for every limit of width > 0, so that a decision
--   costs one read (in the batch's MGET) and one SET whatever the number of such limits:
--   little-endian doubles packed with `struct`, each such limit's numbers in order. Zeros stand
--   for a full limit. The state key's name carries a signature of the policy's limit names and
--   kinds (and of this layout), so a policy whose set of limits changed reads a fresh key. The
--   key lives until its slowest limit is full. Limits of width 0 keep their own keys.

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

-- Packs what the part's limits of width > 0 hold now; a full limit writes zeros.
local PACKED_OUT = {}
local function write_state(policy, first, base, key)
  local single = policy.single
  if single then
    -- One limit keeps numbers here (the common case): they start at the part's first position.
    local reset_ms = RESET_MS[first + single]
    if reset_ms > 0 then
      local text = pack(policy.format, NEXT[base + 1], NEXT[base + 2], NEXT[base + 3])
      call('SET', key, text, 'PX', px(reset_ms))
      WRITTEN[key] = text
    else
      call('DEL', key)
      WRITTEN[key] = false
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
    local text = pack(policy.format, unpack(PACKED_OUT, 1, policy.width))
    call('SET', key, text, 'PX', px(longest))
    WRITTEN[key] = text
  else
    call('DEL', key)
    WRITTEN[key] = false
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
      call('DEL', state_key)
      WRITTEN[state_key] = false
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

-- A guarded op (or group) whose queue key exists: every part answers status 4, nothing decided.
local GUARD, WAITING = nil, false
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

-- Applies one batch: KEYS and ARGV as described at the top. The definitions above are made once
-- per call of the script (EVALSHA) or once per load of the library (FCALL); everything a batch
-- reads or writes is reset here.
local function apply(KEYS, ARGV)
  local t = call('TIME')
  now = (tonumber(t[1]) * 1000000 + tonumber(t[2])) / 1000
  PREFETCHED, WRITTEN = {}, {}

  -- Policies: limit definitions and block settings shared by the ops of this batch.
  local arg_at = 2
  local policies = {}
  for p = 1, tonumber(ARGV[1]) do
    local n, has_block, ids = tonumber(ARGV[arg_at]), ARGV[arg_at + 1] == '1', ARGV[arg_at + 2] == '1'
    arg_at = arg_at + 3
    local policy = { n = n, algorithms = {}, params = {}, offsets = {}, ids = ids, packed = false }
    if has_block then
      local block = { after = tonumber(ARGV[arg_at]), within = tonumber(ARGV[arg_at + 1]), forget = tonumber(ARGV[arg_at + 2]), durations = {} }
      local ndurations = tonumber(ARGV[arg_at + 3])
      for d = 1, ndurations do block.durations[d] = tonumber(ARGV[arg_at + 3 + d]) end
      arg_at = arg_at + 4 + ndurations
      policy.block = block
    end
    local width = 0
    for i = 1, n do
      local kind, kind_width, count = ARGV[arg_at], tonumber(ARGV[arg_at + 1]), tonumber(ARGV[arg_at + 2])
      local algorithm = ALGORITHMS[kind]
      if not algorithm then error('this library has no limit algorithm ' .. kind) end
      if algorithm.width ~= kind_width then
        error('limit algorithm ' .. kind .. ' keeps ' .. algorithm.width .. ' numbers in Lua but ' .. kind_width .. ' in its description')
      end
      local values = {}
      for v = 1, count do values[v] = tonumber(ARGV[arg_at + 2 + v]) end
      arg_at = arg_at + 3 + count
      policy.algorithms[i], policy.params[i] = algorithm, algorithm.params(values)
      if kind_width > 0 then
        policy.offsets[i] = width + 1
        if policy.packed then policy.single = nil else policy.packed, policy.single = true, i end
        width = width + kind_width
      else
        policy.offsets[i] = 0
        policy.own_keys = true
      end
    end
    policy.width, policy.bytes, policy.format = width, 8 * width, '<' .. string.rep('d', width)
    policies[p] = policy
  end

  local nops, nblocks = tonumber(ARGV[arg_at]), tonumber(ARGV[arg_at + 1])
  arg_at = arg_at + 2
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
    local mode, joined, p, alert = match(header, '^(%a)(%+?)(%d+):?(.*)$')
    local guarded = mode == 'C' or mode == 'R'
    if guarded then mode = string.lower(mode) end
    local c = { mode = mode, joined = joined == '+', policy = policies[tonumber(p)], alert = tonumber(alert), markers = alert ~= '', guarded = guarded }
    CLASSES[header] = c
    return c
  end

  -- Every number of the results, in order; packed once at the end.
  local RESULTS, nresults, errors = { now }, 1, {}
  local key_at = nops + nblocks + 1
  local block_at = nops + 1
  local count, first, packed_base = 0, 0, 0
  -- The policy whose limits fill positions 1..n now.
  local loaded = nil
  for index = 1, nops do
    local header = ARGV[arg_at]
    local class = CLASSES[header] or class_of(header)
    local mode, policy = class.mode, class.policy
    arg_at = arg_at + 1
    count = count + 1
    local id = ''
    if policy.ids then
      id = ARGV[arg_at]
      arg_at = arg_at + 1
    end
    local charged_at = now
    local adjusting = mode == 'a' or mode == 'A'
    if adjusting then
      charged_at = tonumber(ARGV[arg_at]) or now
      arg_at = arg_at + 1
    end
    local n = policy.n
    local offsets = policy.offsets
    -- The policy's limits at positions first + 1..n (kept from the op before when they are there).
    if first > 0 or loaded ~= policy then
      local algorithms, params = policy.algorithms, policy.params
      for i = 1, n do
        local g = first + i
        ALGORITHM[g], PARAMS[g], OFFSET[g] = algorithms[i], params[i], offsets[i]
      end
      if first == 0 then loaded = policy else loaded = nil end
    end
    for i = 1, n do
      local g = first + i
      local text = ARGV[arg_at]
      local cost = NUMBERS[text]
      if not cost then
        cost = tonumber(text)
        NUMBERS[text] = cost
      end
      COST[g] = cost
      arg_at = arg_at + 1
      if offsets[i] == 0 then
        OWN_KEY[g] = KEYS[key_at]
        key_at = key_at + 1
      else
        OWN_KEY[g] = nil
      end
    end
    if adjusting then
      for i = 1, n do
        CHARGED[first + i] = tonumber(ARGV[arg_at])
        arg_at = arg_at + 1
      end
    end
    for i = 1, n do
      if class.markers then
        MARKER[first + i] = KEYS[key_at]
        key_at = key_at + 1
      else
        MARKER[first + i] = nil
      end
    end
    local block = policy.block
    if block then
      block = block_of(count, block, KEYS[block_at], block_at, KEYS[key_at])
      block_at = block_at + 1
      key_at = key_at + 1
    end

    if class.guarded then
      GUARD = KEYS[key_at]
      key_at = key_at + 1
    end
    local ok, message
    -- Every part's guard (a composed op's levels' queues): any that exists stops the group.
    if GUARD then
      if not WAITING and call('EXISTS', GUARD) == 1 then WAITING = true end
      GUARD = nil
    end
    if WAITING then
      ok = true
      if not class.joined then waiting(count, first + n) end
    elseif count == 1 and not class.joined then
      ok, message = pcall(run_one, index, mode, policy, class.alert, KEYS[index], block, id, charged_at)
    else
      PART_INDEX[count], PART_MODE[count], PART_POLICY[count], PART_ALERT[count] = index, mode, policy, class.alert
      PART_FIRST[count], PART_BASE[count], PART_KEY[count] = first, packed_base, KEYS[index]
      PART_BLOCK[count], PART_ID[count], PART_CHARGED_AT[count] = block, id, charged_at
      if not class.joined then ok, message = pcall(run_group, count) end
    end
    first, packed_base = first + n, packed_base + policy.width

    if not class.joined then
      local at = 0
      for k = 1, count do
        local limits = (count == 1) and policy.n or PART_POLICY[k].n
        if ok then
          RESULTS[nresults + 1], RESULTS[nresults + 2] = STATUS[k], BLOCKED_OUT[k]
          nresults = nresults + 2
          for i = at + 1, at + limits do
            RESULTS[nresults + 1], RESULTS[nresults + 2], RESULTS[nresults + 3], RESULTS[nresults + 4] = FLAGS[i], REMAINING[i], ceil(RESET_MS[i]), ceil(RETRY_MS[i])
            nresults = nresults + 4
          end
        else
          if k == 1 then
            if type(message) == 'table' then message = message.err or 'error' end
            errors[#errors + 1] = tostring(message)
          end
          RESULTS[nresults + 1] = -#errors
          for i = 2, 2 + 4 * limits do RESULTS[nresults + i] = 0 end
          nresults = nresults + 2 + 4 * limits
        end
        at = at + limits
      end
      count, first, packed_base = 0, 0, 0
      GUARD, WAITING = nil, false
    end
  end
  if count > 0 then error('the last op of the batch says it is decided with a next one') end

  -- struct.pack takes its values on the Lua stack: a few thousand at a time.
  local chunks = {}
  for from = 1, nresults, 4000 do
    local to = from + 3999
    if to > nresults then to = nresults end
    chunks[#chunks + 1] = pack('<' .. string.rep('d', to - from + 1), unpack(RESULTS, from, to))
  end
  return { table.concat(chunks), unpack(errors) }
end
