-- checkSubject (src/core/detectors/engine.ts) for one subject, a step of batch.lua.
-- The subject's keys are KEYS[k + 1] … KEYS[k + 5]: its hash, loop fingerprints, address hash,
-- allow key, country hash. `set` is its check set (subject.lua set_of); its arguments follow
-- ARGV[i], each only when its detector is on: the prompt's fingerprint (16 bytes, as a loop entry
-- holds them after its time), the address, the country (src/store/detectors/redis.ts check).
-- Returns 0 when the subject is not allow-listed and nothing refused or raised (most checks: a
-- table, even empty, costs Redis ~2.5k instructions more to send, its items ~1k each), else
-- { allowListed, refusedDetector, refusedLevel, retryAfterMs (-1: until cleared), raised… } where
-- each raised is detector, level, value, threshold, addresses (comma-separated), countries
-- (comma-separated) and which count crossed ('addresses' or 'countries'; '' when countries are not
-- counted).
local band, bxor = bit.band, bit.bxor

-- One fingerprint in the loop string: when (ms), the prompt's hash (two 32-bit halves), its
-- SimHash in four 16-bit quarters (hi's low, hi's high, lo's low, lo's high): 24 bytes.
-- (The SimHash read back as its two 32-bit halves, or as its quarters.)
local ENTRY_BYTES, HALVES, QUARTERS = 24, '<I4I4', '<I2I2I2I2'

local sfind, ssub, pack, unpack_ = string.find, string.sub, struct.pack, struct.unpack
local floor, max_ = math.floor, math.max

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

-- Within 7 bits, two SimHashes agree on one of their eight bytes at least.
local function share_a_byte(a1, a2, a3, a4, b1, b2, b3, b4)
  local a, b = { a1, a2, a3, a4 }, { b1, b2, b3, b4 }
  for i = 1, 4 do
    local x, y = a[i], b[i]
    if x % 256 == y % 256 or floor(x / 256) == floor(y / 256) then return true end
  end
  return false
end

-- How many entries of `ring` from `first` (0-based) on have `bytes` at `offset`; with `marks`,
-- each one's index (`base` + its place) is marked there instead. string.find scans in C; a
-- match across entries (not at the offset) is skipped.
local function entries_with(ring, first, base, bytes, offset, marks)
  local from, count = first * ENTRY_BYTES + 1, 0
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

-- The loop strings of this script call (L -> { ring, added, last, reset, max, … }): the string
-- as read (GET) and, apart, the entries this call added (last: the newest one's time). A Lua
-- string costs Redis ~11 instructions a byte to make, so the 2 KB ring is neither rebuilt on every
-- check nor joined to what a batch's checks of the subject added; written once when the steps are
-- done (write_loops).
local loops, loop_order

local function loop_of(L)
  local l = loops[L]
  if l then return l end
  local ring, reset = redis.call('GET', L) or '', false
  if #ring % ENTRY_BYTES ~= 0 then ring, reset = '', true end
  l = { ring = ring, added = '', reset = reset }
  loops[L] = l
  loop_order[#loop_order + 1] = L
  return l
end

-- This call's entries APPENDed (and the expiry pushed on when renew says so), or, when the string
-- would hold more than max + max / 4 entries (or could not be read), its newest max SET anew.
local function write_loops()
  for _, L in ipairs(loop_order) do
    local l = loops[L]
    if l.reset or (#l.ring + #l.added) / ENTRY_BYTES > l.max + math.floor(l.max / 4) then
      local ring = l.ring .. l.added
      local keep = math.min(l.max, #ring / ENTRY_BYTES)
      redis.call('SET', L, string.sub(ring, #ring - keep * ENTRY_BYTES + 1), 'PX', l.px)
    else
      redis.call('APPEND', L, l.added)
      if l.renew then redis.call('PEXPIRE', L, l.px) end
    end
  end
end

local function entry_at(ring, i)
  return (unpack_('<d', ring, i * ENTRY_BYTES + 1))
end

-- The SimHash of the i-th counted entry (0-based; ring's n entries, then those this call added),
-- as `format` reads it (its halves, or its quarters).
local function simhash_at(ring, added, n, i, format)
  if i < n then return unpack_(format, ring, i * ENTRY_BYTES + 17) end
  return unpack_(format, added, (i - n) * ENTRY_BYTES + 17)
end

-- state.ts observeLoop: the subject's fingerprints, oldest first, in one string of fixed-size
-- entries (`ring`, then this call's `added`); counted are this one and the newest max - 1 before
-- it in the window (older ones stay in the string until it is cut, uncounted). Counts the
-- identical and the near-identical (SimHash within distance bits) in the window, this one included.
-- Times never fall along the string (an entry is never dated before the newest one, should Redis
-- TIME step back; this call's entries are dated now or later, in any window), so the window's
-- start is found by bisection. Identical prompts are found by their hash's bytes; within 3 bits
-- two SimHashes agree on one of their four quarters at least (within 7, on one of their eight
-- bytes), so bits are counted only for entries that do. `fp` is the entry's last 16 bytes, sent as
-- they are kept (src/store/detectors/redis.ts): the entry is its time packed before them, and the
-- bytes searched for are cut from it (parsing 32 hex digits and packing 7 numbers cost more).
local function observe_loop(L, fp, window, max, distance)
  if #fp ~= 16 then error('a fingerprint is 16 bytes') end
  local l = loop_of(L)
  local ring, added = l.ring, l.added
  local n, p = #ring / ENTRY_BYTES, #added / ENTRY_BYTES
  -- (The newest entry's time kept as a number: not unpacked again a step.)
  local at = l.last
  if at == nil then
    at = now
    if n > 0 then at = max_(now, entry_at(ring, n - 1)) end
  else
    at = max_(now, at)
  end
  l.last = at
  l.added = added .. pack('<d', at) .. fp
  l.max = max
  -- Kept for the window: where the subject's hash is there to keep when (renew), its expiry is
  -- pushed on now and then; else on every call, as no hash is made for it.
  -- (renew's common answer, not yet time, inline.)
  local xl = H.xl
  if exists and xl ~= nil and #ring ~= 0 and xl >= now + window then
    l.px = xl - now
  elseif exists then
    local r, ms = renew('xl', window, #ring == 0)
    l.renew, l.px = l.renew or r, ms
  else
    l.renew, l.px = true, window
  end
  -- Counted: ring's entries from first, added's from first_added. Mostly the oldest of them is in
  -- the window: one read, not a bisection's.
  local since = now - window
  local first, first_added = n + p - (max - 1), 0
  if first >= n then
    first, first_added = n, first - n
  else
    first = max_(0, first)
    if first < n and entry_at(ring, first) <= since then
      local low, high = first + 1, n
      while low < high do
        local mid = floor((low + high) / 2)
        if entry_at(ring, mid) <= since then low = mid + 1 else high = mid end
      end
      first = low
    end
  end

  -- Each counted entry with the prompt's hash, by its place in ring then added; this one too.
  -- (Each search is tried first with one string.find: most find nothing anywhere, and a call of
  -- entries_with costs ~1k instructions more.)
  local from, from_added = first * ENTRY_BYTES + 1, first_added * ENTRY_BYTES + 1
  local bytes = ssub(fp, 1, 8)
  local exact = 1
  if sfind(ring, bytes, from, true) then exact = exact + entries_with(ring, first, 0, bytes, 8) end
  if p > 0 and sfind(added, bytes, from_added, true) then
    exact = exact + entries_with(added, first_added, n, bytes, 8)
  end
  if distance == 0 then return exact, 0 end
  local near = 1 -- this one
  local candidates -- (made when a search finds something)
  if distance <= 3 then
    for j = 0, 3 do
      bytes = ssub(fp, 9 + 2 * j, 10 + 2 * j)
      if sfind(ring, bytes, from, true) then
        candidates = candidates or {}
        entries_with(ring, first, 0, bytes, 16 + 2 * j, candidates)
      end
      if p > 0 and sfind(added, bytes, from_added, true) then
        candidates = candidates or {}
        entries_with(added, first_added, n, bytes, 16 + 2 * j, candidates)
      end
    end
    if not candidates then return exact, near end
  else
    candidates = {}
    local q1, q2, q3, q4 = unpack_(QUARTERS, fp, 9)
    for i = first, n + p - 1 do
      if i < n or i - n >= first_added then
        local p1, p2, p3, p4 = simhash_at(ring, added, n, i, QUARTERS)
        if distance > 7 or share_a_byte(p1, p2, p3, p4, q1, q2, q3, q4) then candidates[i] = true end
      end
    end
  end
  local hi, lo
  for i in pairs(candidates) do
    if not hi then hi, lo = unpack_(HALVES, fp, 9) end
    local p_hi, p_lo = simhash_at(ring, added, n, i, HALVES)
    if near_bits(p_hi, p_lo, hi, lo, distance) then near = near + 1 end
  end
  return exact, near
end

-- Members stamped with `now` in this script call, and their hash's size, per hash: the same
-- member again changes nothing while time stands still (addresses, countries).
local stamped

-- At the start of a call: no loop string read, no member stamped.
local function start_checks()
  loops, loop_order, stamped = {}, {}, {}
end

-- state.ts observeAddress / observeCountry: a hash of member -> last seen, those not seen in the
-- window forgotten, at most cap kept (member '' adds nothing). The field `oldest` of the subject
-- keeps a lower bound of the oldest sighting: while it is in the window nothing can be forgotten
-- and the hash is not read. Returns the count.
local function observe_seen(key, member, since, window, cap, oldest, keep)
  local done = stamped[key]
  if done and done.members[member] then return done.size end
  local size, stored, before = 0, false, 0
  if num(oldest, 0) > since then
    size = redis.call('HLEN', key)
    before = size
    if member ~= '' then
      if size < cap then
        size = size + redis.call('HSET', key, member, now)
        stored = true
      elseif redis.call('HEXISTS', key, member) == 1 then
        redis.call('HSET', key, member, now)
        stored = true
      end
    end
  else
    local all = redis.call('HGETALL', key)
    local known, low = false, now
    for i = 1, #all, 2 do
      local at = tonumber(all[i + 1])
      if at <= since then
        redis.call('HDEL', key, all[i])
      else
        size = size + 1
        if all[i] == member then known = true elseif at < low then low = at end
      end
    end
    before = size
    if member ~= '' and (known or size < cap) then
      redis.call('HSET', key, member, now)
      stored = true
      if not known then size = size + 1 end
    end
    put(oldest, low)
  end
  -- Kept for the window (renew; `keep` names its field): fresh when it was empty before.
  if size > 0 then
    local r, ms = renew(keep, window, before == 0)
    if r then redis.call('PEXPIRE', key, ms) end
  end
  if not done then
    done = { members = {} }
    stamped[key] = done
  end
  done.size = size
  if stored then done.members[member] = true end
  return size
end

local NOTHING, ALLOW_LISTED = 0, { 1, '', 0, 0 }

-- A raised detection to a check's reply (made on the first).
local function push_check(out, detector, level, value, threshold, addresses, countries, by)
  if out == NOTHING then out = { 0, '', 0, 0 } end
  out[#out + 1] = detector
  out[#out + 1] = level
  out[#out + 1] = fmt(value)
  out[#out + 1] = fmt(threshold)
  out[#out + 1] = addresses
  out[#out + 1] = countries or ''
  out[#out + 1] = by or ''
  return out
end

-- A refusal to a check's reply.
local function refuse(out, detector, level, retry_ms)
  if out == NOTHING then return { 0, detector, level, retry_ms } end
  out[2], out[3], out[4] = detector, level, retry_ms
  return out
end

local function check_step(KEYS, k, set, ARGV, i)
  local L, A, C = KEYS[k + 2], KEYS[k + 3], KEYS[k + 5]
  if allowed(KEYS[k + 4]) then return ALLOW_LISTED end
  load(KEYS[k + 1])

  local out = NOTHING

  -- prompt loops
  local p = set.loop
  if p then
    i = i + 1
    local window, max, distance, near_factor = p[1], p[2], p[3], p[4]
    local alert_at, throttle_at, block_at, block_ms = p[5], p[6], p[7], p[8]
    local exact, near = observe_loop(L, ARGV[i], window, max, distance)
    local by_exact = level_of(exact, alert_at, throttle_at, block_at, 1)
    local by_near = 0
    if distance > 0 then by_near = level_of(near, alert_at, throttle_at, block_at, near_factor) end
    local level = math.max(by_exact, by_near)
    local hold = window
    if level == 3 then hold = block_ms end
    if level > 0 and raise('loop', level, hold) then
      local thresholds = { alert_at, throttle_at, block_at }
      local value, scale = exact, 1
      if by_exact < by_near then value, scale = near, near_factor end
      out = push_check(out, 'loop', level, value, math.ceil(thresholds[level] * scale), '')
    end
  end

  -- shared keys
  p = set.addr
  if p then
    i = i + 1
    local address, window, cap = ARGV[i], p[1], p[2]
    local alert_at, block_at, block_ms = p[3], p[4], p[5]
    local since = now - window
    local size = observe_seen(A, address, since, window, cap, 'ao', 'xa')
    -- the key's history (state.ts learnAddresses): fields he, hp, hx (window, peak, alerted), hb, hn (baseline, windows)
    local factor, min_addresses, warmup, keep = p[6], p[7], p[8], p[9]
    local w = math.floor(now / window)
    -- (num and put inline: most steps change none of the five, and a call each cost more.)
    local he, hp, hx, hb, hn = H.he or -1, H.hp or 0, H.hx or 0, H.hb or 0, H.hn or 0
    if w ~= he then
      if he >= 0 and hp > 0 and hx == 0 then
        hn = math.min(hn + 1, 1000000)
        hb = hb + (hp - hb) * math.max(1 / hn, 1 - keep)
      end
      he, hp, hx = w, 0, 0
    end
    if size > hp then hp = size end
    local learned = 0
    if factor > 0 and hn >= warmup and hn > 0 then
      learned = math.max(min_addresses, math.ceil(factor * hb - 1e-9))
    end
    local level = level_of(size, alert_at, 0, block_at, 1)
    local by_history = level == 0 and learned > 0 and size >= learned
    if by_history then level = 1 end
    -- countries (state.ts observeCountry, countryLevel): hash C of country -> last seen, at most cap
    local cp = set.country
    local counted = cp ~= nil
    local countries, by_countries = 0, false
    local country_alert_at, country_block_at = 0, 0
    if counted then
      i = i + 1
      country_alert_at, country_block_at = cp[2], cp[3]
      countries = observe_seen(C, ARGV[i], since, window, cp[1], 'co', 'xc')
      local by_country = 0
      if country_block_at > 0 and countries >= country_block_at then
        by_country = 3
      elseif country_alert_at > 0 and countries >= country_alert_at then
        by_country = 1
      end
      if by_country > level then level, by_countries = by_country, true end
    end
    if level > 0 then hx = 1 end
    if H.he ~= he then put('he', he) end
    if H.hp ~= hp then put('hp', hp) end
    if H.hx ~= hx then put('hx', hx) end
    if H.hb ~= hb then put('hb', hb) end
    if H.hn ~= hn then put('hn', hn) end
    local hold = window
    if level == 3 then hold = block_ms end
    if level > 0 and raise('sharedKey', level, hold) then
      local value, threshold = size, alert_at
      if by_countries then
        value, threshold = countries, country_alert_at
        if level == 3 then threshold = country_block_at end
      elseif level == 3 then
        threshold = block_at
      elseif by_history then
        threshold = learned
      end
      local by, named = '', ''
      if counted then
        by = 'addresses'
        if by_countries then by = 'countries' end
        named = table.concat(redis.call('HKEYS', C), ',')
      end
      out = push_check(out, 'sharedKey', level, value, threshold, table.concat(redis.call('HKEYS', A), ','), named, by)
    end
  end

  -- the gate: a block, a loop's throttle, a spend hold (enforced detectors only)
  -- (flag_at inline: a flag is up while its level is not 0 and its time, when set, has not come;
  -- most subjects have none, and a call a detector costs more than the test.)
  local throttled, held, refused = false, false, false
  local scrape_bucket_ms = set.scrape_bucket
  local enforce = set.enforce
  for j = 1, #enforce do
    local name = enforce[j]
    local lv = H[LV[name]]
    if lv ~= nil and lv ~= 0 then
      local u = H[U[name]] or 0
      if u > 0 and now >= u then lv = 0 end
      if lv == 3 then
        if u == 0 then u = -1 else u = u - now end
        out, refused = refuse(out, name, 3, u), true
        break
      end
      if lv == 2 and name == 'loop' then throttled = true end
      if lv == 2 and name == 'spend' then held = true end
      -- a scraping throttle (state.ts scrapeGate): the rest of a bucket that found the subject at the limit
      if lv == 2 and name == 'scraping' and scrape_bucket_ms > 0 then
        local bucket = math.floor(now / scrape_bucket_ms)
        if num('cm', -1) == bucket and num('chi', 0) == 1 then
          out, refused = refuse(out, 'scraping', 2, (bucket + 1) * scrape_bucket_ms - now), true
          break
        end
      end
    end
  end
  if not refused and throttled then
    local minute = math.floor(now / 60000)
    local rm, rn = num('rm', -1), num('rn', 0)
    if rm ~= minute then rm, rn = minute, 0 end
    put('rm', rm)
    if rn < set.throttle then
      put('rn', rn + 1)
    else
      put('rn', rn)
      out, refused = refuse(out, 'loop', 2, (minute + 1) * 60000 - now), true
    end
  end
  p = set.spend
  if not refused and held and p then
    local factor, bucket_ms, keep, floor_ = p[1], p[2], p[4], p[5]
    local b, m, s, h = roll_spend(factor, bucket_ms, keep, floor_)
    save_spend(b, m, s, h)
    if s >= math.max(b, floor_) then out = refuse(out, 'spend', 2, (m + 1) * bucket_ms - now) end
  end
  save(set.ttl)
  return out
end
