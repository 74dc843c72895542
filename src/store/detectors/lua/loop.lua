-- The loop detector's count (state.ts observeLoop) for check.lua: a subject's fingerprints, oldest
-- first, in one string of fixed-size entries. One entry: when (ms), the prompt's hash (two 32-bit
-- halves), its SimHash in four 16-bit quarters (hi's low, hi's high, lo's low, lo's high): 24
-- bytes. A step's fingerprint comes as an entry's last 16 bytes (src/store/detectors/redis.ts).
-- Costs, in Redis instructions (docs/abuse.md "What it costs"): a VM operation ~15-50, a table
-- read ~110, a call of a Lua function ~300, of a C function such as string.find or struct.unpack
-- 600-2,000, a new table ~700, a new string ~11 a byte and as much again to collect it.
local band, bxor = bit.band, bit.bxor
local ENTRY_BYTES, HALVES = 24, '<I4I4'
local sfind, ssub, sbyte, pack, unpack_ = string.find, string.sub, string.byte, struct.pack, struct.unpack

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

-- How many entries of `ring` have `piece` at `offset`, from byte `r` on (where a string.find found
-- it first); with `marks`, each one's index is marked there too. string.find scans in C; a match
-- across entries (not at the offset) is skipped.
local function entries_with(ring, r, piece, offset, marks)
  local count, at = 0, r
  while at do
    if (at - 1) % ENTRY_BYTES == offset then
      count = count + 1
      if marks then marks[(at - 1 - offset) / ENTRY_BYTES] = true end
    end
    at = sfind(ring, piece, at + 1, true)
  end
  return count
end

-- entries_with, passing over the entries that hold the whole fingerprint (`runs`, identical_runs:
-- counted apart), a run of them at once. (Apart: its steps would cost the others ~200
-- instructions a match.)
local function entries_past(ring, r, piece, offset, marks, runs)
  local count, at, k = 0, r, 1
  local start = runs[1]
  while at do
    local next_ = at + 1
    if (at - 1) % ENTRY_BYTES == offset then
      local c = (at - 1 - offset) / ENTRY_BYTES
      -- (The runs ascend, as the entries found: those ended before c are passed.)
      while start and runs[k + 1] <= c do
        k = k + 2
        start = runs[k]
      end
      if start and start <= c then
        next_ = runs[k + 1] * ENTRY_BYTES + 1
      else
        count = count + 1
        if marks then marks[c] = true end
      end
    end
    at = sfind(ring, piece, next_, true)
  end
  return count
end

-- Marks the entries of ring that have `piece` at `offset`, from byte `r` on (where string.find
-- found it first), in `marks` (made when there is one: returned). The caller searches first: most
-- pieces are found nowhere, and a call of this function costs ~1k instructions more.
local function mark(marks, ring, piece, offset, r, runs)
  marks = marks or {}
  if runs then
    entries_past(ring, r, piece, offset, marks, runs)
  else
    entries_with(ring, r, piece, offset, marks)
  end
  return marks
end

-- The entries of ring from byte `r` on (where the fingerprint's hash was found first) that hold
-- the whole fingerprint fp: how many, and their runs, ascending (nil when none): { first entry,
-- the entry after it, … } for each run of them one after another. A looping subject's string is
-- mostly these: each costs this one search, not its bits counted (it is near), and the searches
-- for the hash and the SimHash's pieces pass over a run of them at once. (A list, not a table by
-- entry: an entry put in a table's hash part costs Redis ~1.8k instructions.)
local function identical_runs(ring, r, fp)
  local count, runs, k = 0, nil, 0
  local at = sfind(ring, fp, r, true)
  while at do
    if (at - 1) % ENTRY_BYTES == 8 then
      local c = (at - 9) / ENTRY_BYTES
      count = count + 1
      if k > 0 and runs[k] == c then
        runs[k] = c + 1
      else
        runs = runs or {}
        runs[k + 1], runs[k + 2] = c, c + 1
        k = k + 2
      end
    end
    at = sfind(ring, fp, at + 1, true)
  end
  return count, runs
end

-- The loop strings of this script call (L -> { ring, n, p, at, time, … }): the string as read
-- (GET, n entries) and the p entries this call added, all dated `at` (the call's one time, never
-- before the ring's newest entry; `time` packed once). The added entries are not searched: the
-- gateway names, with each check, which of the call's earlier checks of the subject it matches
-- (below). They are joined once, when the steps are done (write_loops): while their fingerprints
-- lie one after another in ARGV, 16 bytes each (most calls: a run of checks), by their places
-- there (ARGV[first] … ARGV[last]); else in a list (fps). A Lua string costs Redis ~11
-- instructions a byte to make, so the 2 KB ring is neither rebuilt on every check nor joined to
-- what a batch's checks of the subject added.
-- gaps: per loop string, the ordinals (below) of the call's checks of it that observed nothing (a
-- step that failed first, or allow-listed), ascending; nil while there are none. added_at: the
-- place in ARGV of the fingerprint added last (a step that fails after it observed left its entry).
local loops, loop_order, gaps, added_at

local function start_loops()
  loops, loop_order, gaps, added_at = {}, {}, nil, nil
end

-- A check of L with the loop on that observed nothing: it still takes its ordinal.
local function loop_gap(L)
  gaps = gaps or {}
  local g = gaps[L]
  if not g then
    g = {}
    gaps[L] = g
  end
  local l = loops[L]
  g[#g + 1] = (l and l.p or 0) + #g
end

-- A check of L that failed, its fingerprint at ARGV[i] (batch.lua): a gap unless it observed.
local function loop_failed(L, i)
  if added_at ~= i then loop_gap(L) end
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
  l = { ring = ring, n = n, reset = reset, at = at, time = pack('<d', at), p = 0, first = 0, last = -1 }
  loops[L] = l
  loop_order[#loop_order + 1] = L
  return l
end

-- The entries this call added to l, joined (each its time, then its fingerprint).
local function added_of(l, ARGV)
  local time = l.time
  if l.fps then return time .. table.concat(l.fps, time) end
  return time .. table.concat(ARGV, time, l.first, l.last)
end

-- This call's entries APPENDed (and the expiry pushed on when renew says so), or, when the string
-- would hold more than max + max / 4 entries (or could not be read), its newest max SET anew.
local function write_loops(ARGV)
  for _, L in ipairs(loop_order) do
    local l = loops[L]
    if l.p > 0 then
      if l.reset or l.n + l.p > l.max + math.floor(l.max / 4) then
        local ring = l.ring .. added_of(l, ARGV)
        local keep = math.min(l.max, #ring / ENTRY_BYTES)
        redis.call('SET', L, string.sub(ring, #ring - keep * ENTRY_BYTES + 1), 'PX', l.px)
      else
        redis.call('APPEND', L, added_of(l, ARGV))
        if l.renew then redis.call('PEXPIRE', L, l.px) end
      end
    end
  end
end

-- The position among the call's added entries of the check of ordinal o (nil: it added none),
-- with g the ordinals that added none.
local function position(g, o)
  local pos = o
  for j = 1, #g do
    local x = g[j]
    if x == o then return nil end
    if x > o then return pos end
    pos = pos - 1
  end
  return pos
end

-- Counts the identical and the near-identical (SimHash within distance bits) in the window, this
-- one included: this one and the newest max - 1 before it that are in the window are counted
-- (older ones stay in the string until it is cut, uncounted). Times never fall along the string
-- (an entry is never dated before the newest one, should Redis TIME step back), so the window's
-- start is found by bisection — at most once a call: a call's steps share its time, and what they
-- count only moves on. In the string read, identical prompts are found by their hash's bytes;
-- within 3 bits two SimHashes agree on one of their four quarters at least, within 7 on one of
-- their eight bytes (further apart, every entry is a candidate), so bits are counted only for
-- entries that do. The fingerprint, ARGV[i], is the entry's last 16 bytes, sent as they are kept
-- (src/store/detectors/redis.ts): the entry is its time packed before them, and the pieces searched
-- for are cut from it, all in one struct.unpack (a C call costs ~600-2,000 instructions).
-- Among the entries this call added, the gateway counted (src/store/detectors/batch.ts): after the
-- 16 bytes come the call's earlier checks of this subject with the loop on that this one matches,
-- by ordinal (their order among those checks, from 0), a byte each: o (near, not identical),
-- 128 + o (identical, and near), or 255 then o (identical, not near: a 64-bit hash collision).
-- Most checks match none: no bytes follow. Only those the window counts are counted here.
local function observe_loop(L, ARGV, i, window, max, distance)
  local fp = ARGV[i]
  local size = #fp
  if size < 16 then error('a fingerprint is 16 bytes') end
  local l = loop_of(L)
  local ring, n, p = l.ring, l.n, l.p
  l.max = max

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

  -- The call's own entries this one matches (the gateway's bytes), those counted.
  local exact, near = 1, 1
  if size > 16 then
    local g = gaps and gaps[L]
    local ordinal = p + (g and #g or 0)
    local bytes = { sbyte(fp, 17, size) }
    local j, m = 1, #bytes
    while j <= m do
      local b, e, nr = bytes[j], false, true
      if b == 255 then
        j = j + 1
        b, e, nr = bytes[j], true, false
      elseif b >= 128 then
        b, e = b - 128, true
      end
      if b == nil or b >= ordinal then error('a loop match names no earlier check') end
      if g then b = position(g, b) end
      if b and b >= first_added then
        if e then exact = exact + 1 end
        if nr then near = near + 1 end
      end
      j = j + 1
    end
    fp = ssub(fp, 1, 16)
  end

  -- Added: by its place in ARGV while the call's fingerprints lie one after another there.
  if l.fps then
    l.fps[p + 1] = fp
  elseif size == 16 and (p == 0 or i == l.last + 1) then
    if p == 0 then l.first = i end
    l.last = i
  else
    local fps = {}
    for a = l.first, l.last do
      fps[#fps + 1] = ARGV[a]
    end
    fps[p + 1] = fp
    l.fps = fps
  end
  l.p, added_at = p + 1, i

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

  -- Each counted entry of the string read with the prompt's hash. (Each search is tried first
  -- with one string.find, and entries_with goes on from where it found the piece: most find
  -- nothing, and a call of entries_with costs ~1k instructions more.) Where the hash is found
  -- and its entries follow one another, those holding the whole fingerprint are counted first,
  -- identical and near, and the searches below pass over them (`runs`).
  local from = first * ENTRY_BYTES + 1
  local candidates, runs = nil, nil
  if first >= n then
    if distance == 0 then return exact, 0 end
    return exact, near
  end
  if distance == 0 then
    local hash = ssub(fp, 1, 8)
    local r = sfind(ring, hash, from, true)
    if r then exact = exact + entries_with(ring, r, hash, 8) end
    return exact, 0
  end
  local hash, q1, q2, q3, q4, q5, q6, q7, q8
  if distance <= 3 then
    hash, q1, q2, q3, q4 = unpack_('<c8c2c2c2c2', fp)
  elseif distance <= 7 then
    hash, q1, q2, q3, q4, q5, q6, q7, q8 = unpack_('<c8c1c1c1c1c1c1c1c1', fp)
  else
    hash = ssub(fp, 1, 8)
  end
  local r = sfind(ring, hash, from, true)
  if r then
    -- (Only where two entries that hold it follow one another: an entry found so costs ~1.5k
    -- instructions more than it saves, a run of them searched at once saves ~6k an entry.)
    local at = sfind(ring, fp, r, true)
    if at and (at - 1) % ENTRY_BYTES == 8 and sfind(ring, fp, at + ENTRY_BYTES, true) == at + ENTRY_BYTES then
      local same
      same, runs = identical_runs(ring, at, fp)
      exact, near = exact + same, near + same
    end
    if runs then
      exact = exact + entries_past(ring, r, hash, 8, nil, runs)
    else
      exact = exact + entries_with(ring, r, hash, 8)
    end
  end
  if distance > 7 then
    candidates = {}
    local c, k = first, 1
    while c < n do
      if runs and runs[k] == c then
        c, k = runs[k + 1], k + 2
      else
        candidates[c] = true
        c = c + 1
      end
    end
  elseif distance <= 3 then
    -- (Each piece searched for here first, inline: most are found nowhere.)
    r = sfind(ring, q1, from, true)
    if r then candidates = mark(candidates, ring, q1, 16, r, runs) end
    r = sfind(ring, q2, from, true)
    if r then candidates = mark(candidates, ring, q2, 18, r, runs) end
    r = sfind(ring, q3, from, true)
    if r then candidates = mark(candidates, ring, q3, 20, r, runs) end
    r = sfind(ring, q4, from, true)
    if r then candidates = mark(candidates, ring, q4, 22, r, runs) end
  else
    r = sfind(ring, q1, from, true)
    if r then candidates = mark(candidates, ring, q1, 16, r, runs) end
    r = sfind(ring, q2, from, true)
    if r then candidates = mark(candidates, ring, q2, 17, r, runs) end
    r = sfind(ring, q3, from, true)
    if r then candidates = mark(candidates, ring, q3, 18, r, runs) end
    r = sfind(ring, q4, from, true)
    if r then candidates = mark(candidates, ring, q4, 19, r, runs) end
    r = sfind(ring, q5, from, true)
    if r then candidates = mark(candidates, ring, q5, 20, r, runs) end
    r = sfind(ring, q6, from, true)
    if r then candidates = mark(candidates, ring, q6, 21, r, runs) end
    r = sfind(ring, q7, from, true)
    if r then candidates = mark(candidates, ring, q7, 22, r, runs) end
    r = sfind(ring, q8, from, true)
    if r then candidates = mark(candidates, ring, q8, 23, r, runs) end
  end
  if not candidates then return exact, near end
  local hi, lo = unpack_(HALVES, fp, 9)
  for c in pairs(candidates) do
    local c_hi, c_lo = unpack_(HALVES, ring, c * ENTRY_BYTES + 17)
    if near_bits(c_hi, c_lo, hi, lo, distance) then near = near + 1 end
  end
  return exact, near
end
