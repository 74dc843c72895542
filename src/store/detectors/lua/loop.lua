-- The loop detector's count (state.ts observeLoop) for check.lua: a subject's fingerprints, oldest
-- first, in one string of fixed-size entries. One entry: when (ms), the prompt's hash (two 32-bit
-- halves), its SimHash in four 16-bit quarters (hi's low, hi's high, lo's low, lo's high): 24
-- bytes. A step's fingerprint comes as an entry's last 16 bytes (src/store/detectors/redis.ts).
-- Costs, in Redis instructions (docs/abuse.md "What it costs"): a VM operation ~15-50, a table
-- read ~110, a call of a Lua function ~300, of a C function such as string.find or struct.unpack
-- 600-2,000, a new table ~700, a new string ~11 a byte and as much again to collect it.
local band, bxor = bit.band, bit.bxor
local ENTRY_BYTES, HALVES = 24, '<I4I4'
local sfind, ssub, pack, unpack_ = string.find, string.sub, struct.pack, struct.unpack

-- Set bits of x, when at most `left`; else -1. One set bit at a time: far-apart ones stop early.
local function bits_within(x, left)
  while x ~= 0 and left >= 0 do
    x, left = band(x, x - 1), left - 1
  end
  return left
end

-- Whether two SimHashes (their hi and lo halves) differ in at most `distance` bits.
local function near_bits(a_hi, a_lo, b_hi, b_lo, distance)
  local left = bits_within(bxor(a_hi, b_hi), distance)
  return left >= 0 and bits_within(bxor(a_lo, b_lo), left) >= 0
end

-- How many entries of `ring` have `bytes` at `offset`, from byte `from` on (where a string.find
-- found them first); with `marks`, each one's index (`base` + its place) is marked there instead.
-- string.find scans in C; a match across entries (not at the offset) is skipped.
local function entries_with(ring, from, base, bytes, offset, marks)
  local count = 0
  while true do
    local at = sfind(ring, bytes, from, true)
    if not at then return count end
    if (at - 1) % ENTRY_BYTES == offset then
      count = count + 1
      if marks then marks[base + (at - 1 - offset) / ENTRY_BYTES] = true end
    end
    from = at + 1
  end
end

-- Marks the entries of ring (n of them) and of added that have `piece` at `offset`, in `marks`
-- (made when there is one: returned): in ring from byte `in_ring` on, in added from `in_added`,
-- where string.find found the piece first (false: not there). The caller searches first: most
-- pieces are found nowhere, and a call of this function costs ~1k instructions more.
local function mark(marks, ring, added, n, piece, offset, in_ring, in_added)
  marks = marks or {}
  if in_ring then entries_with(ring, in_ring, 0, piece, offset, marks) end
  if in_added then entries_with(added, in_added, n, piece, offset, marks) end
  return marks
end

-- The loop strings of this script call (L -> { ring, n, added, p, at, time, … }): the string as
-- read (GET, n entries) and, apart, the p entries this call added, all dated `at` (the call's one
-- time, never before the ring's newest entry; `time` packed once). A Lua string costs Redis ~11
-- instructions a byte to make, so the 2 KB ring is neither rebuilt on every check nor joined to
-- what a batch's checks of the subject added; written once when the steps are done (write_loops).
local loops, loop_order

local function start_loops()
  loops, loop_order = {}, {}
end

local function entry_at(ring, i)
  return (unpack_('<d', ring, i * ENTRY_BYTES + 1))
end

local function loop_of(L)
  local l = loops[L]
  if l then return l end
  local ring, reset = redis.call('GET', L) or '', false
  if #ring % ENTRY_BYTES ~= 0 then ring, reset = '', true end
  local n = #ring / ENTRY_BYTES
  local at = now
  if n > 0 then
    local newest = entry_at(ring, n - 1)
    if newest > at then at = newest end
  end
  l = { ring = ring, n = n, reset = reset, at = at, time = pack('<d', at), added = '', p = 0 }
  loops[L] = l
  loop_order[#loop_order + 1] = L
  return l
end

-- This call's entries APPENDed (and the expiry pushed on when renew says so), or, when the string
-- would hold more than max + max / 4 entries (or could not be read), its newest max SET anew.
local function write_loops()
  for _, L in ipairs(loop_order) do
    local l = loops[L]
    if l.reset or l.n + l.p > l.max + math.floor(l.max / 4) then
      local ring = l.ring .. l.added
      local keep = math.min(l.max, #ring / ENTRY_BYTES)
      redis.call('SET', L, string.sub(ring, #ring - keep * ENTRY_BYTES + 1), 'PX', l.px)
    else
      redis.call('APPEND', L, l.added)
      if l.renew then redis.call('PEXPIRE', L, l.px) end
    end
  end
end

-- The SimHash halves of the i-th counted entry (0-based; ring's n entries, then those this call
-- added).
local function simhash_at(ring, added, n, i)
  if i < n then return unpack_(HALVES, ring, i * ENTRY_BYTES + 17) end
  return unpack_(HALVES, added, (i - n) * ENTRY_BYTES + 17)
end

-- Counts the identical and the near-identical (SimHash within distance bits) in the window, this
-- one included: this one and the newest max - 1 before it that are in the window are counted
-- (older ones stay in the string until it is cut, uncounted). Times never fall along the string
-- (an entry is never dated before the newest one, should Redis TIME step back), so the window's
-- start is found by bisection — at most once a call: a call's steps share its time, and what they
-- count only moves on. Identical prompts are found by their hash's bytes; within 3 bits two
-- SimHashes agree on one of their four quarters at least, within 7 on one of their eight bytes
-- (further apart, every entry is a candidate), so bits are counted only for entries that do. `fp`
-- is the entry's last 16 bytes, sent as they are kept (src/store/detectors/redis.ts): the entry
-- is its time packed before them, and the pieces searched for are cut from it, all in one
-- struct.unpack (a C call costs ~600-2,000 instructions).
local function observe_loop(L, fp, window, max, distance)
  if #fp ~= 16 then error('a fingerprint is 16 bytes') end
  local l = loop_of(L)
  local ring, added, n, p = l.ring, l.added, l.n, l.p
  l.added, l.p, l.max = added .. l.time .. fp, p + 1, max
  -- Kept for the window: where the subject's hash is there to keep when (renew), its expiry is
  -- pushed on now and then; else on every call, as no hash is made for it.
  -- (renew's common answer, not yet time, inline.)
  local xl = H.xl
  if exists and xl ~= nil and n ~= 0 and xl >= now + window then
    l.px = xl - now
  elseif exists then
    local r, ms = renew('xl', window, n == 0)
    l.renew, l.px = l.renew or r, ms
  else
    l.renew, l.px = true, window
  end
  -- Counted: ring's entries from first, added's from first_added (all in the window). Known
  -- once a call (for its window): `start`, the first entry in the window, or `within`, an entry
  -- in it (those after it are too).
  local since = now - window
  local first, first_added = n + p - (max - 1), 0
  if first >= n then
    first, first_added = n, first - n
  else
    if first < 0 then first = 0 end
    if first < n then
      if l.since ~= since then l.since, l.start, l.within = since, nil, nil end
      local start = l.start
      if start then
        if start > first then first = start end
      elseif not (l.within and first >= l.within) then
        if entry_at(ring, first) <= since then
          local low, high = first + 1, n
          while low < high do
            local mid = math.floor((low + high) / 2)
            if entry_at(ring, mid) <= since then low = mid + 1 else high = mid end
          end
          first, l.start = low, low
        else
          l.within = first
        end
      end
    end
  end

  -- Each counted entry with the prompt's hash, by its place in ring then added; this one too.
  -- (Each search is tried first with one string.find, and entries_with goes on from where it
  -- found the piece: most find nothing anywhere, and a call of entries_with costs ~1k
  -- instructions more.)
  local from, from_added = first * ENTRY_BYTES + 1, first_added * ENTRY_BYTES + 1
  local exact, near, candidates = 1, 1, nil
  if distance == 0 or distance > 7 then
    local hash = ssub(fp, 1, 8)
    local r, a = sfind(ring, hash, from, true), p > 0 and sfind(added, hash, from_added, true)
    if r then exact = exact + entries_with(ring, r, 0, hash, 8) end
    if a then exact = exact + entries_with(added, a, n, hash, 8) end
    if distance == 0 then return exact, 0 end
    candidates = {}
    for i = first, n - 1 do
      candidates[i] = true
    end
    for a = first_added, p - 1 do
      candidates[n + a] = true
    end
  else
    local hash, q1, q2, q3, q4, q5, q6, q7, q8
    if distance <= 3 then
      hash, q1, q2, q3, q4 = unpack_('<c8c2c2c2c2', fp)
    else
      hash, q1, q2, q3, q4, q5, q6, q7, q8 = unpack_('<c8c1c1c1c1c1c1c1c1', fp)
    end
    local r, a = sfind(ring, hash, from, true), p > 0 and sfind(added, hash, from_added, true)
    if r then exact = exact + entries_with(ring, r, 0, hash, 8) end
    if a then exact = exact + entries_with(added, a, n, hash, 8) end
    -- (Each piece searched for here first, inline: most are found nowhere.)
    if distance <= 3 then
      r, a = sfind(ring, q1, from, true), p > 0 and sfind(added, q1, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q1, 16, r, a) end
      r, a = sfind(ring, q2, from, true), p > 0 and sfind(added, q2, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q2, 18, r, a) end
      r, a = sfind(ring, q3, from, true), p > 0 and sfind(added, q3, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q3, 20, r, a) end
      r, a = sfind(ring, q4, from, true), p > 0 and sfind(added, q4, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q4, 22, r, a) end
    else
      r, a = sfind(ring, q1, from, true), p > 0 and sfind(added, q1, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q1, 16, r, a) end
      r, a = sfind(ring, q2, from, true), p > 0 and sfind(added, q2, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q2, 17, r, a) end
      r, a = sfind(ring, q3, from, true), p > 0 and sfind(added, q3, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q3, 18, r, a) end
      r, a = sfind(ring, q4, from, true), p > 0 and sfind(added, q4, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q4, 19, r, a) end
      r, a = sfind(ring, q5, from, true), p > 0 and sfind(added, q5, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q5, 20, r, a) end
      r, a = sfind(ring, q6, from, true), p > 0 and sfind(added, q6, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q6, 21, r, a) end
      r, a = sfind(ring, q7, from, true), p > 0 and sfind(added, q7, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q7, 22, r, a) end
      r, a = sfind(ring, q8, from, true), p > 0 and sfind(added, q8, from_added, true)
      if r or a then candidates = mark(candidates, ring, added, n, q8, 23, r, a) end
    end
    if not candidates then return exact, near end
  end
  local hi, lo = unpack_(HALVES, fp, 9)
  for i in pairs(candidates) do
    local c_hi, c_lo = simhash_at(ring, added, n, i)
    if near_bits(c_hi, c_lo, hi, lo, distance) then near = near + 1 end
  end
  return exact, near
end
