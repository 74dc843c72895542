-- sluice: apply a batch of limiter ops atomically, each op (or group of ops) all or nothing.
-- The semantics mirror src/core/*.ts and src/store/memory.ts; the contract suite holds both to them.
-- Written for speed: Redis runs this for every decision, so it reuses its tables, parses each
-- policy and op header once per batch, reads every state key of the batch with one MGET, and
-- keeps numbers binary both in stored state and in its reply (no decimal formatting or parsing).
-- script.ts runs it as a Redis Function (the definitions made once per load, apply() per call)
-- or, without Functions, as a script ending in `return apply(KEYS, ARGV)`. It follows the
-- prelude and the algorithm parts (prelude.lua, lua/*.lua).
--
-- ARGV: nPolicies, then each policy as one argument, its fields separated by spaces:
--   nLimits blockFlag idFlag [after withinMs forgetMs nDurations d1..dn]
--   then per limit: kind width nParams p1..pn (the algorithm's lua.params)
--   A policy is parsed the first time its text arrives and kept (POLICIES, by its text) while the
--   library stays loaded: the same Limiter sends the same text on every call.
-- then nOps, nBlockKeys, nGuardKeys (-1: one, the busy string of lua/busy.lua), keyMap, opMap,
--   then per op: header [id] [chargedAt] nLimits x cost [nLimits x charged]
--   header = mode, '+' when the op is decided together with the next one (a group: compose()),
--   policy index, then ':' and the alert threshold when the op reports alerts ("c1", "r+2:0.8");
--   id only when the policy's idFlag is 1; chargedAt ('' for now) and charged only in adjust modes.
--   When opMap is not empty, an op whose arguments equal an op's before it is left out, and opMap
--   names, for each op in order, where its arguments start (1 = the first after opMap).
--   Both maps are two characters a place, a 1-based index in base 94 from '!' (33), low digit
--   first ("!!" 1, "\"!" 2, "!\"" 95; at most 8,836: past that encode.ts sends no map).
--   A batch whose ops share a subject (every request of one client) or a mode and cost (every op
--   of one Limiter) so sends each key and op argument once: each would otherwise become a Redis
--   string and a Lua string of its own, and each key an MGET lookup.
-- KEYS: every op's state key (in op order), then the block key of every op whose policy blocks
--   (in op order), then the guard key of every guarded op (in op order) or the busy string, then
--   per op: the own keys of its limits of width 0 (in limit order), then nLimits alert marker
--   keys when the op reports alerts, then the strikes key when the policy blocks. When keyMap is
--   not empty, each distinct key of that layout once, in order of first use, and keyMap names,
--   for every place of the layout, which of them fills it.
-- modes: c consume, r reserve (takes a lease), a adjust, A adjust + release lease, p peek,
--   x reset, u unblock; C and R: c and r guarded by their queue: when it holds tickets, the op
--   (or its group) is not decided and its status is 4. On one Redis the batch names one key, the
--   busy string listing the queues that hold tickets (lua/busy.lua); on a cluster each guarded op
--   names its queue's marker key (lua/queue.lua keeps it while anyone waits). Both are strings
--   read in the batch's one MGET: a guard costs no command of its own.
-- Reply: { results, error messages... }. results is binary: little-endian doubles (nothing to
--   format here or parse in Node): now in ms, then per op: status (1 allowed, 0 denied, +2 when
--   this denial started a block; -k when the op failed with the k-th error message), blockedMs,
--   then per limit: flags (1 allowed, +2 alerted), remaining, resetMs, retryAfterMs (inf for
--   never). Times are whole milliseconds, rounded up.
-- Stored states: one string under the state key for every limit of width > 0, so that a decision
--   costs one read (in the batch's MGET) and one SET whatever the number of such limits (a key the
--   batch changes again is written once more, when its ops are done: see decide.lua):
--   little-endian doubles packed with `struct`, each such limit's numbers in order. Zeros stand
--   for a full limit. The state key's name carries a signature of the policy's limit names and
--   kinds (and of this layout), so a policy whose set of limits changed reads a fresh key. The
--   key lives until its slowest limit is full. Limits of width 0 keep their own keys.

-- Parsed policies by their text (see ARGV above), and how many: a set of policies that keeps
-- changing (a caller building limits per request) empties it rather than growing it.
local POLICIES, npolicies_kept = {}, 0
local MAX_POLICIES_KEPT = 1000

-- Parses a policy's text (limit definitions and block settings) and keeps it.
local function policy_of(text)
  local fields, nfields = {}, 0
  for field in string.gmatch(text, '%S+') do
    nfields = nfields + 1
    fields[nfields] = field
  end
  local n, has_block, ids = tonumber(fields[1]), fields[2] == '1', fields[3] == '1'
  local at = 4
  local policy = { n = n, algorithms = {}, params = {}, offsets = {}, ids = ids, packed = false }
  if has_block then
    local block = { after = tonumber(fields[at]), within = tonumber(fields[at + 1]), forget = tonumber(fields[at + 2]), durations = {} }
    local ndurations = tonumber(fields[at + 3])
    for d = 1, ndurations do block.durations[d] = tonumber(fields[at + 3 + d]) end
    at = at + 4 + ndurations
    policy.block = block
  end
  local width = 0
  for i = 1, n do
    local kind, kind_width, count = fields[at], tonumber(fields[at + 1]), tonumber(fields[at + 2])
    local algorithm = ALGORITHMS[kind]
    if not algorithm then error('this library has no limit algorithm ' .. tostring(kind)) end
    if algorithm.width ~= kind_width then
      error('limit algorithm ' .. kind .. ' keeps ' .. algorithm.width .. ' numbers in Lua but ' .. tostring(kind_width) .. ' in its description')
    end
    local values = {}
    for v = 1, count do values[v] = tonumber(fields[at + 2 + v]) end
    at = at + 3 + count
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
  if at ~= nfields + 1 then error('policy has ' .. nfields .. ' fields where its limits name ' .. (at - 1)) end
  policy.width, policy.bytes, policy.format = width, 8 * width, '<' .. string.rep('d', width)
  if npolicies_kept >= MAX_POLICIES_KEPT then POLICIES, npolicies_kept = {}, 0 end
  POLICIES[text], npolicies_kept = policy, npolicies_kept + 1
  return policy
end

-- Op headers (see ARGV above) parsed, by their text; they name their policy by its place in the
-- batch, so a few dozen texts cover every batch and are kept like policies.
local HEADERS, nheaders_kept = {}, 0
-- Numbers by their text, kept the same way: costs and settlements repeat (1 request, the same
-- estimate, the usual usage), and Lua's tonumber (strtod) costs as much as a dozen lookups here.
local NUMBERS, nnumbers_kept = {}, 0
local MAX_NUMBERS_KEPT = 10000
local function number_of(text)
  local x = tonumber(text)
  if x then
    if nnumbers_kept >= MAX_NUMBERS_KEPT then NUMBERS, nnumbers_kept = {}, 0 end
    NUMBERS[text], nnumbers_kept = x, nnumbers_kept + 1
  end
  return x
end
-- struct.pack formats by the number of doubles (at most 4,000: see the end of apply).
local FORMATS = {}
local function header_of(header)
  local mode, joined, p, alert = match(header, '^(%a)(%+?)(%d+):?(.*)$')
  if not mode then error('op header ' .. header .. ' is not one') end
  local guarded = mode == 'C' or mode == 'R'
  if guarded then mode = string.lower(mode) end
  local c = { mode = mode, joined = joined == '+', policy = tonumber(p), alert = tonumber(alert), markers = alert ~= '', guarded = guarded }
  if nheaders_kept >= MAX_POLICIES_KEPT then HEADERS, nheaders_kept = {}, 0 end
  HEADERS[header], nheaders_kept = c, nheaders_kept + 1
  return c
end

-- Every place p of a map (see ARGV above) filled: places[p] = source[offset + index], or
-- offset + index without a source; indexes[p] = index when asked for.
local byte = string.byte
local MAP_SLICE = 4000 -- string.byte returns its values on the Lua stack: this many at a time
local function expand(map, source, offset, places, indexes)
  local length = #map
  local p = 0
  for from = 1, length, MAP_SLICE do
    local to = from + MAP_SLICE - 1
    if to > length then to = length end
    local b = { byte(map, from, to) }
    for j = 1, to - from + 1, 2 do
      local i = b[j] - 32 + 94 * (b[j + 1] - 33)
      p = p + 1
      if source then places[p] = source[offset + i] else places[p] = offset + i end
      if indexes then indexes[p] = i end
    end
  end
end
-- The maps of the batch being applied, read into tables kept from batch to batch.
local OP_STARTS, KEY_PLACES, KEY_INDEX, VALUES = {}, {}, {}, {}

-- Reads keys[offset + 1 .. offset + count] into values[1 .. count]: with one MGET, a thousand at
-- a time (Lua's unpack limit); or, for a batch of a cluster node's ops over several hash slots
-- (one_by_one: see script.ts), one GET each, as an MGET may only name one slot. A key named
-- again right after itself (a hot subject's ops in a batch too large to map: the store groups a
-- node batch's ops by hash slot, so they are neighbours) is read once.
local function read_keys(keys, offset, count, one_by_one, values)
  if one_by_one then
    local last, value
    for k = 1, count do
      local key = keys[offset + k]
      if key ~= last then
        last, value = key, call('GET', key)
      end
      values[k] = value
    end
  else
    for from = 1, count, 1000 do
      local to = from + 999
      if to > count then to = count end
      local got = call('MGET', unpack(keys, offset + from, offset + to))
      for k = 1, #got do values[from + k - 1] = got[k] end
    end
  end
end

-- Applies one batch: KEYS and ARGV as described at the top. The definitions above are made once
-- per call of the script (EVALSHA) or once per load of the library (FCALL); everything a batch
-- reads or writes is reset here.
-- The definitions (tables, evaluate, commit, run_one, run_group, waiting) are in decide.lua.
local function apply(KEYS, ARGV, one_by_one, ko, ao)
  -- A node batch's keys and arguments stay in the one table its call got, from ko + 1 and ao + 1
  -- (script.ts): copying them out cost more than its GETs.
  ko, ao = ko or 0, ao or 0
  local t = call('TIME')
  now = (tonumber(t[1]) * 1000000 + tonumber(t[2])) / 1000
  PREFETCHED, WRITTEN = {}, {}
  STAGED, nstaged, nnumbers = {}, 0, 0

  -- Policies: each one argument, parsed once and kept while the library stays loaded.
  local npolicies = tonumber(ARGV[ao + 1])
  local policies = {}
  for p = 1, npolicies do
    local text = ARGV[ao + p + 1]
    policies[p] = POLICIES[text] or policy_of(text)
  end
  local arg_at = ao + npolicies + 2

  local nops, nblocks, nguards = tonumber(ARGV[arg_at]), tonumber(ARGV[arg_at + 1]), tonumber(ARGV[arg_at + 2])
  local keymap, opmap = ARGV[arg_at + 3], ARGV[arg_at + 4]
  arg_at = arg_at + 5
  -- nguards -1: one guard key for the whole batch, the busy string (lua/busy.lua).
  local listed = nguards < 0
  if listed then nguards = 1 end
  -- Ops whose arguments repeat an op's before them were left out: where each op's start.
  local starts = false
  if opmap ~= '' then
    expand(opmap, nil, arg_at - 1, OP_STARTS)
    starts = OP_STARTS
  end
  -- The state, block and guard keys of the whole batch, read before anything is written (so a
  -- key a cluster node does not serve fails the call whole, and a key read twice would answer the
  -- same twice). Repeated keys came once each, in order of first use: the places read here name
  -- the first `distinct` of them, each read once; then KEYS is every place of the layout.
  local prefetch = nops + nblocks + nguards
  if keymap ~= '' then
    expand(keymap, KEYS, ko, KEY_PLACES, KEY_INDEX)
    local distinct = 0
    for k = 1, prefetch do
      if KEY_INDEX[k] > distinct then distinct = KEY_INDEX[k] end
    end
    read_keys(KEYS, ko, distinct, one_by_one, VALUES)
    for k = 1, prefetch do PREFETCHED[k] = VALUES[KEY_INDEX[k]] end
    KEYS, ko = KEY_PLACES, 0
  else
    read_keys(KEYS, ko, prefetch, one_by_one, PREFETCHED)
  end

  -- Every number of the results, in order; packed once at the end.
  local RESULTS, nresults, errors = { now }, 1, {}
  local key_at = ko + prefetch + 1
  local block_at = nops + 1
  local guard_at = nops + nblocks + 1
  local busy = listed and PREFETCHED[guard_at]
  local count, first, packed_base = 0, 0, 0
  -- The policy whose limits fill positions 1..n now.
  local loaded = nil
  for index = 1, nops do
    if starts then arg_at = starts[index] end
    local header = ARGV[arg_at]
    local class = HEADERS[header] or header_of(header)
    local mode, policy = class.mode, policies[class.policy]
    if not policy then error('op header ' .. header .. ' names a policy the batch does not carry') end
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
      COST[g] = NUMBERS[text] or number_of(text)
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
        local text = ARGV[arg_at]
        CHARGED[first + i] = NUMBERS[text] or number_of(text)
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
      block = block_of(count, block, KEYS[ko + block_at], block_at, KEYS[key_at])
      block_at = block_at + 1
      key_at = key_at + 1
    end

    local ok, message
    -- Every part's guard (a composed op's levels' queues): any marker that exists stops the group.
    if class.guarded then
      if listed then
        if busy and busy_holds(busy, KEYS[ko + index]) then WAITING = true end
      else
        if PREFETCHED[guard_at] then WAITING = true end
        guard_at = guard_at + 1
      end
    end
    if WAITING then
      ok = true
      if not class.joined then waiting(count, first + n) end
    elseif count == 1 and not class.joined then
      ok, message = pcall(run_one, index, mode, policy, class.alert, KEYS[ko + index], block, id, charged_at)
    else
      PART_INDEX[count], PART_MODE[count], PART_POLICY[count], PART_ALERT[count] = index, mode, policy, class.alert
      PART_FIRST[count], PART_BASE[count], PART_KEY[count] = first, packed_base, KEYS[ko + index]
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
      WAITING = false
    end
  end
  if count > 0 then error('the last op of the batch says it is decided with a next one') end

  -- The state keys the batch's ops changed, each written once, as the last op left it.
  for i = 1, nstaged do
    local key, ms = STAGED_KEY[i], STAGED_MS[i]
    if ms then
      local policy, at = STAGED_POLICY[i], STAGED_AT[i]
      call('SET', key, pack(policy.format, unpack(STAGED_NUMBERS, at + 1, at + policy.width)), 'PX', px(ms))
    else
      call('DEL', key)
    end
  end

  -- struct.pack takes its values on the Lua stack: a few thousand at a time.
  local chunks = {}
  for from = 1, nresults, 4000 do
    local to = from + 3999
    if to > nresults then to = nresults end
    local width = to - from + 1
    local format_of = FORMATS[width]
    if not format_of then
      format_of = '<' .. string.rep('d', width)
      FORMATS[width] = format_of
    end
    chunks[#chunks + 1] = pack(format_of, unpack(RESULTS, from, to))
  end
  return { table.concat(chunks), unpack(errors) }
end
