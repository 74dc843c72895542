-- The loop count's searches of a subject's stored fingerprints (loop.lua, which says what an
-- entry holds), over a part of the string at a time.
local ENTRY_BYTES, HALVES = 27, '<I4I4'
local sfind, ssub, sbyte, pack, unpack_ = string.find, string.sub, string.byte, struct.pack, struct.unpack
local band, bxor = bit.band, bit.bxor

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

-- The count of one check over a part of the stored string (ring_count), set by observe_loop: the
-- string, the fingerprint, its hash and SimHash pieces, its halves (cut when first needed), the
-- distance. (Upvalues: a Lua call with many arguments costs ~1k instructions.)
local R, F, Hh, Q1, Q2, Q3, Q4, Q5, Q6, Q7, Q8, FHI, FLO, D

-- The first entry from entry `lo` on that holds `piece` at `offset` (nil: none).
local function entry_with(piece, offset, lo)
  local at = sfind(R, piece, lo * ENTRY_BYTES + offset + 1, true)
  while at do
    local o = at - 1 - offset
    if o % ENTRY_BYTES == 0 then return o / ENTRY_BYTES end
    at = sfind(R, piece, at + 1, true)
  end
  return nil
end

-- How many entries before entry `hi` have `piece` at `offset`, from byte `at` on (where a
-- string.find found it first). A match across entries (not at the offset) is skipped.
local function count_before(piece, offset, at, hi)
  local count, limit = 0, hi * ENTRY_BYTES
  while at do
    local o = at - 1 - offset
    if o >= limit then break end
    if o % ENTRY_BYTES == 0 then count = count + 1 end
    at = sfind(R, piece, at + 1, true)
  end
  return count
end

-- As count_before, each such entry marked in `marks` (made when there is one: returned).
local function mark_before(marks, piece, offset, at, hi)
  local limit = hi * ENTRY_BYTES
  while at do
    local o = at - 1 - offset
    if o >= limit then break end
    if o % ENTRY_BYTES == 0 then
      marks = marks or {}
      marks[o / ENTRY_BYTES] = true
    end
    at = sfind(R, piece, at + 1, true)
  end
  return marks
end

-- The stored entries lo .. hi - 1 that have the fingerprint's hash, and those whose SimHash is
-- within D bits of its own (0 when D is 0). Within 3 bits two SimHashes agree on one of their
-- four quarters at least, within 7 on one of their eight bytes (further apart, every entry is a
-- candidate), so bits are counted only for entries that do. Each piece is searched for inline
-- first: most are found nowhere, and a call of mark_before costs ~1k instructions more. `no_hash`:
-- the hash is known to be found nowhere.
-- How many of the marked entries have a SimHash within D bits of the fingerprint's.
local function near_marked(marks)
  if not FHI then FHI, FLO = unpack_(HALVES, F, 9) end
  local near, d = 0, D
  for c in pairs(marks) do
    local c_hi, c_lo = unpack_(HALVES, R, c * ENTRY_BYTES + 15)
    if near_bits(c_hi, c_lo, FHI, FLO, d) then near = near + 1 end
  end
  return near
end

local function ring_count(lo, hi, no_hash)
  if lo >= hi then return 0, 0 end
  if not Hh then
    if D == 0 or D > 7 then
      Hh = ssub(F, 1, 8)
    elseif D <= 3 then
      Hh, Q1, Q2, Q3, Q4 = unpack_('<c8c2c2c2c2', F)
    else
      Hh, Q1, Q2, Q3, Q4, Q5, Q6, Q7, Q8 = unpack_('<c8c1c1c1c1c1c1c1c1', F)
    end
  end
  local from, e = lo * ENTRY_BYTES + 1, 0
  local at
  if not no_hash then
    at = sfind(R, Hh, from + 6, true)
    if at then e = count_before(Hh, 6, at, hi) end
  end
  local d = D
  if d == 0 then return e, 0 end
  local near, marks = 0, nil
  if d > 7 then
    if not FHI then FHI, FLO = unpack_(HALVES, F, 9) end
    for c = lo, hi - 1 do
      local c_hi, c_lo = unpack_(HALVES, R, c * ENTRY_BYTES + 15)
      if near_bits(c_hi, c_lo, FHI, FLO, d) then near = near + 1 end
    end
    return e, near
  end
  if d <= 3 then
    at = sfind(R, Q1, from + 14, true)
    if at then marks = mark_before(marks, Q1, 14, at, hi) end
    at = sfind(R, Q2, from + 16, true)
    if at then marks = mark_before(marks, Q2, 16, at, hi) end
    at = sfind(R, Q3, from + 18, true)
    if at then marks = mark_before(marks, Q3, 18, at, hi) end
    at = sfind(R, Q4, from + 20, true)
    if at then marks = mark_before(marks, Q4, 20, at, hi) end
  else
    at = sfind(R, Q1, from + 14, true)
    if at then marks = mark_before(marks, Q1, 14, at, hi) end
    at = sfind(R, Q2, from + 15, true)
    if at then marks = mark_before(marks, Q2, 15, at, hi) end
    at = sfind(R, Q3, from + 16, true)
    if at then marks = mark_before(marks, Q3, 16, at, hi) end
    at = sfind(R, Q4, from + 17, true)
    if at then marks = mark_before(marks, Q4, 17, at, hi) end
    at = sfind(R, Q5, from + 18, true)
    if at then marks = mark_before(marks, Q5, 18, at, hi) end
    at = sfind(R, Q6, from + 19, true)
    if at then marks = mark_before(marks, Q6, 19, at, hi) end
    at = sfind(R, Q7, from + 20, true)
    if at then marks = mark_before(marks, Q7, 20, at, hi) end
    at = sfind(R, Q8, from + 21, true)
    if at then marks = mark_before(marks, Q8, 21, at, hi) end
  end
  if not marks then return e, 0 end
  return e, near_marked(marks)
end

-- The newest stored entry of n that holds the fingerprint, `known` one that does: the string's
-- tail searched, a longer one each time (in a loop of k prompts, the newest is k entries back).
local function newest(n, known)
  local span = 1
  while true do
    local t = n - span
    if t <= known then t = known end
    local z, c = nil, entry_with(F, 6, t)
    while c do
      z = c
      c = entry_with(F, 6, c + 1)
    end
    if z then return z end
    span = span * 4
  end
end

