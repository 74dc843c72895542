-- The loop detector's count (state.ts observeLoop) for check.lua: a subject's fingerprints, oldest
-- first, in one string of fixed-size entries. One entry, 27 bytes: when (ms, 6 bytes), the
-- prompt's hash (two 32-bit halves), its SimHash in four 16-bit quarters (hi's low, hi's high,
-- lo's low, lo's high), then its stamp (5 bytes): C, N (11 bits each, modulo WRAP), B, the C of
-- its chain's first entry (11 bits), and the distance D it was counted with (5 bits). A step's
-- fingerprint comes as an entry's hash and SimHash (src/store/detectors/redis.ts).
--
-- The stamps make a repeated fingerprint's count cost the same whatever its matches. Among the
-- entries that hold the same fingerprint (its 16 bytes), kept and added: C goes up by the entries
-- with its hash from one to the next, so that between two of them C's difference is how many
-- entries with the hash lie after the first up to the second; N does the same for the entries
-- whose SimHash is within D bits, among those of one chain (a chain is begun anew where the
-- distance changes). A new entry takes its stamp from the newest entry with its fingerprint (Z),
-- counting only what lies after it; its count is its stamp less that of the oldest such entry in
-- the window (Y), and what lies in the window before Y. Those before Y and after Z are few in a
-- loop (none, in one prompt over and over): each is searched for, as every entry is where the
-- fingerprint is kept nowhere (most checks). A subject keeps at most 1,024 + 256 entries and a
-- call adds at most 127, so C's differ among the entries of one fingerprint, and the counts'
-- differences stay below WRAP.
-- Costs, in Redis instructions (docs/abuse.md "What it costs"): a VM operation ~15-50, a table
-- read ~110, a call of a Lua function ~300-1,000, of a C function such as string.find or
-- struct.unpack 600-2,000, a new table ~700, a new string ~11 a byte and as much again to collect.
local WRAP, STAMP_AT = 2048, 23

-- The loop strings of this script call (L -> { ring, n, p, at, time, … }): the string as read
-- (GET, n entries) and the p entries this call added, all dated `at` (the call's one time, never
-- before the ring's newest entry; `time` packed once). The added entries are not searched: the
-- gateway names, with each check, which of the call's earlier checks of the subject it matches
-- (below). They are joined once, when the steps are done (write_loops): while their fingerprints
-- lie one after another in ARGV, 16 bytes each (most calls: a run of checks), by their places
-- there (ARGV[first] … ARGV[last]); else in a list (fps). Their stamps: while every one is
-- C = N = B = 0 with the distance d0 (a fingerprint kept nowhere: most calls), none is kept;
-- else a list of them (st, each as the 5 bytes' number: unstamp). A Lua string costs Redis ~11
-- instructions a byte to make, so the 2.5 KB ring is neither rebuilt on every check nor joined to
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
  return (unpack_('<I6', ring, i * ENTRY_BYTES + 1))
end

-- A stamp's number (its 5 bytes) as C, N, B, D.
local function unstamp(x)
  local c = x % 2048
  x = (x - c) / 2048
  local nr = x % 2048
  x = (x - nr) / 2048
  local d = x % 32
  return c, nr, (x - d) / 32, d
end

-- The stamp of the i-th stored entry.
local function stamp_of(ring, i)
  return unstamp(unpack_('<I5', ring, i * ENTRY_BYTES + STAMP_AT))
end

local function loop_of(L)
  local l = loops[L]
  if l then return l end
  local ring, reset = redis.call('GET', L) or '', false
  if #ring % ENTRY_BYTES ~= 0 then ring, reset = '', true end
  local n = #ring / ENTRY_BYTES
  local at = now
  if n > 0 then
    local newest_at = entry_at(ring, n - 1)
    if newest_at > at then at = newest_at end
  end
  l = {
    ring = ring, n = n, reset = reset, at = at, time = pack('<I6', at), p = 0, first = 0, last = -1, d0 = 0,
  }
  loops[L] = l
  loop_order[#loop_order + 1] = L
  return l
end

-- The fingerprint of the entry this call added at position q (from 0).
local function added_fp(l, ARGV, q)
  if l.fps then return l.fps[q + 1] end
  return ARGV[l.first + q]
end

-- The stamp of the entry this call added at position q.
local function added_stamp(l, q)
  local st = l.st
  if not st then return 0, 0, 0, l.d0 end
  return unstamp(st[q + 1])
end

-- Sets the stamp of the entry this call added at position q: kept once one is not C = N = B = 0
-- with the distance d0 (those before it then kept as that).
local function stamp(l, q, C, N, B, d)
  local st = l.st
  if not st then
    local plain = l.d0 * 4194304
    st = {}
    for k = 1, q do
      st[k] = plain
    end
    l.st = st
  end
  st[q + 1] = C + 2048 * N + 4194304 * (32 * B + d)
end

-- struct.pack formats of p entries (time, fingerprint, stamp), by p.
local ENTRIES = {}

-- The entries this call added to l, joined (each its time, its fingerprint, its stamp).
local function added_of(l, ARGV)
  local time = l.time
  local st = l.st
  if not st then
    local stamp = pack('<I5', l.d0 * 4194304)
    if l.fps then return time .. table.concat(l.fps, stamp .. time) .. stamp end
    return time .. table.concat(ARGV, stamp .. time, l.first, l.last) .. stamp
  end
  -- (One struct.pack of them all: a C call and a new string an entry cost more.)
  local p = l.p
  local parts, k = {}, 0
  for q = 1, p do
    parts[k + 1], parts[k + 2] = time, added_fp(l, ARGV, q - 1)
    parts[k + 3] = st[q]
    k = k + 3
  end
  local format = ENTRIES[p]
  if not format then
    format = '<' .. string.rep('c6c16I5', p)
    ENTRIES[p] = format
  end
  return pack(format, unpack(parts, 1, k))
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
-- count only moves on. The fingerprint, ARGV[i], is an entry's hash and SimHash, sent as they are
-- kept (src/store/detectors/redis.ts).
-- Among the entries this call added, the gateway counted (src/store/detectors/batch.ts): after the
-- 16 bytes come the call's earlier checks of this subject with the loop on that this one matches,
-- by ordinal (their order among those checks, from 0), a byte each: o (near, not identical),
-- 128 + o (the same 16 bytes), 254 then o (the same hash, the SimHash near but not the same), or
-- 255 then o (the same hash, not near: a 64-bit hash collision). Most checks match none.
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

  -- The call's own entries this one matches (the gateway's bytes), by position q: ne, nn those
  -- in the window (identical hash, near); zq the newest that holds the whole fingerprint and ae,
  -- an those after it (all when there is none); yq the oldest in the window that holds it and be,
  -- bn those in the window before it.
  local ne, nn, ae, an, be, bn = 0, 0, 0, 0, 0, 0
  local zq, yq
  if size > 16 then
    local g = gaps and gaps[L]
    local ordinal = p + (g and #g or 0)
    local bytes = { sbyte(fp, 17, size) }
    fp = ssub(fp, 1, 16)
    local j, m = 1, #bytes
    while j <= m do
      local b, e, nr, same = bytes[j], 0, 1, false
      if b >= 254 then
        if b == 255 then nr = 0 end
        j = j + 1
        b, e = bytes[j], 1
      elseif b >= 128 then
        b, e, same = b - 128, 1, true
      end
      if b == nil or b >= ordinal then error('a loop match names no earlier check') end
      if distance == 0 then nr = 0 end
      if g then b = position(g, b) end
      if b then
        if same then
          zq, ae, an = b, 0, 0
          if b >= first_added and not yq then yq = b end
        else
          ae, an = ae + e, an + nr
          if b >= first_added and not yq then be, bn = be + e, bn + nr end
        end
        if b >= first_added then ne, nn = ne + e, nn + nr end
      end
      j = j + 1
    end
  end

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

  -- Added: by its place in ARGV while the call's fingerprints lie one after another there (its
  -- stamp when the count is done).
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
  if p == 0 then l.d0 = distance end
  l.p, added_at = p + 1, i

  -- The pieces searched for, cut in one struct.unpack (a C call costs ~600-2,000 instructions),
  -- unless the call added the fingerprint before (then only when the string is searched).
  -- (ring_count's upvalues are set only where it is called: each costs the common path more.)
  local hash, q1, q2, q3, q4, at
  if not zq then
    if distance == 0 or distance > 7 then
      hash = ssub(fp, 1, 8)
    elseif distance <= 3 then
      hash, q1, q2, q3, q4 = unpack_('<c8c2c2c2c2', fp)
    else
      hash, q1, q2, q3, q4, Q5, Q6, Q7, Q8 = unpack_('<c8c1c1c1c1c1c1c1c1', fp)
    end
    at = n > 0 and sfind(ring, hash, 7, true)
  end
  if not (zq or at) then
    -- The fingerprint kept nowhere (most checks): the window's near ones, each piece searched for
    -- inline first (most are found nowhere; a Lua call costs Redis ~1k instructions).
    local near = 1 + nn
    if distance > 0 and first < n then
      if distance > 7 then
        R, F, D, FHI, Hh = ring, fp, distance, nil, hash
        local _, found = ring_count(first, n, true)
        near = near + found
      else
        -- (mark_before goes on from where a piece was found: its entries, up to the string's end.
        -- Its upvalues are set only then: a write of one cost the common path ~0.9k instructions.)
        local from, w, marks = first * ENTRY_BYTES + 1, #q1, nil
        at = sfind(ring, q1, from + 14, true)
        if at then
          R = ring
          marks = mark_before(marks, q1, 14, at, n)
        end
        at = sfind(ring, q2, from + 14 + w, true)
        if at then
          R = ring
          marks = mark_before(marks, q2, 14 + w, at, n)
        end
        at = sfind(ring, q3, from + 14 + 2 * w, true)
        if at then
          R = ring
          marks = mark_before(marks, q3, 14 + 2 * w, at, n)
        end
        at = sfind(ring, q4, from + 14 + 3 * w, true)
        if at then
          R = ring
          marks = mark_before(marks, q4, 14 + 3 * w, at, n)
        end
        if distance > 3 then
          at = sfind(ring, Q5, from + 18, true)
          if at then
            R = ring
            marks = mark_before(marks, Q5, 18, at, n)
          end
          at = sfind(ring, Q6, from + 19, true)
          if at then
            R = ring
            marks = mark_before(marks, Q6, 19, at, n)
          end
          at = sfind(ring, Q7, from + 20, true)
          if at then
            R = ring
            marks = mark_before(marks, Q7, 20, at, n)
          end
          at = sfind(ring, Q8, from + 21, true)
          if at then
            R = ring
            marks = mark_before(marks, Q8, 21, at, n)
          end
        end
        if marks then
          F, D, FHI = fp, distance, nil
          near = near + near_marked(marks)
        end
      end
    end
    if l.st or distance ~= l.d0 then stamp(l, p, 0, 0, 0, distance) end
    if distance == 0 then return 1 + ne, 0 end
    return 1 + ne, near
  end

  -- Z and Y (above), as places: a stored entry's index, or n + q. Z in the stored string is
  -- looked for in the whole of it (so that every entry kept with the fingerprint takes its stamp
  -- from another: one chain), only when the call added none; Y from the window's first entry.
  R, F, D, FHI, Hh = ring, fp, distance, nil, nil
  local Z, Y, yall
  if zq then
    Z = n + zq
  elseif at then
    yall = entry_with(fp, 6, math.floor((at - 7) / ENTRY_BYTES))
    if yall then Z = newest(n, yall) end
  end
  if first < n and (yall or zq) then
    if yall and yall >= first then
      Y = yall
    else
      -- (Inline: where it is found first is an entry's, but for a match across entries.)
      local y = sfind(ring, fp, first * ENTRY_BYTES + 7, true)
      if y and (y - 7) % ENTRY_BYTES == 0 then Y = (y - 7) / ENTRY_BYTES
      elseif y then Y = entry_with(fp, 6, first) end
    end
  end
  if not Y and yq then Y = n + yq end

  local C, N, B, exact, near = 0, 0, 0, nil, nil
  local range_e, range_n
  if not Z then
    -- Kept nowhere but as another's hash (a collision): every entry in the window counted.
    range_e, range_n = ring_count(first, n)
    exact, near = 1 + range_e + ne, 1 + range_n + nn
  else
    local zC, zN, zB, zD, aE, aN
    if Z < n then
      zC, zN, zB, zD = stamp_of(ring, Z)
      local e1, n1
      if Z < first then
        -- (Before the window: what lies after it is the window's entries and those before them.)
        e1, n1 = ring_count(Z + 1, first)
        range_e, range_n = ring_count(first, n)
        e1, n1 = e1 + range_e, n1 + range_n
      else
        e1, n1 = ring_count(Z + 1, n)
      end
      aE, aN = e1 + ae, n1 + an
    else
      zC, zN, zB, zD = added_stamp(l, zq)
      aE, aN = ae, an
    end
    C = (zC + 1 + aE) % WRAP
    if zD == distance then
      N, B = (zN + 1 + aN) % WRAP, zB
    else
      N, B = 0, C
    end
    if not Y then
      if not range_e then range_e, range_n = ring_count(first, n) end
      exact, near = 1 + range_e + ne, 1 + range_n + nn
    else
      local yC, yN, yB, yD, bE, bN
      if Y < n then
        yC, yN, yB, yD = stamp_of(ring, Y)
        bE, bN = 0, 0
        if Y > first then bE, bN = ring_count(first, Y) end
      else
        yC, yN, yB, yD = added_stamp(l, yq)
        bE, bN = ring_count(first, n)
        bE, bN = bE + be, bN + bn
      end
      exact = (C - yC) % WRAP + 1 + bE
      if yB == B and yD == distance then
        near = (N - yN) % WRAP + 1 + bN
      else
        -- (Another chain: the distance changed between them. Every entry counted.)
        local _, n1 = ring_count(first, n)
        near = 1 + n1 + nn
      end
    end
  end
  local st = l.st
  if st then
    st[p + 1] = C + 2048 * N + 4194304 * (32 * B + distance)
  elseif C ~= 0 or N ~= 0 or B ~= 0 or distance ~= l.d0 then
    stamp(l, p, C, N, B, distance)
  end
  if distance == 0 then return exact, 0 end
  return exact, near
end
