-- checkSubject (src/core/detectors/engine.ts) for one subject, a step of batch.lua.
-- The subject's keys are KEYS[k + 1] … KEYS[k + 5]: its hash, loop fingerprints, address hash,
-- allow key, country hash. `set` is its check set (subject.lua set_of); its argument follows
-- ARGV[i] when the loop detector is on: the prompt's fingerprint (16 bytes, as a loop entry holds
-- them after its time), then the call's earlier checks it matches (loop.lua observe_loop). Its head `h` (batch.lua) names the places in ARGV of the address (h[6])
-- and the country (h[7]) when the shared-key detector looks at them: texts sent once a call
-- (src/store/detectors/redis.ts check).
-- Returns 0 when the subject is not allow-listed and nothing refused or raised (most checks: a
-- table, even empty, costs Redis ~2.5k instructions more to send, its items ~1k each), else
-- { allowListed, refusedDetector, refusedLevel, retryAfterMs (-1: until cleared), raised… } where
-- each raised is detector, level, value, threshold, addresses (comma-separated), countries
-- (comma-separated) and which count crossed ('addresses' or 'countries'; '' when countries are not
-- counted).

-- Members stamped with `now` in this script call, and their hash's size, per hash: the same
-- member again changes nothing while time stands still (addresses, countries). An address
-- hash's also keeps what the last shared-key step on it observed (check_step).
local stamped

-- At the start of a call: no loop string read (loop.lua), no member stamped.
local function start_checks()
  start_loops()
  stamped = {}
end

-- After a step that failed: the next shared-key step observes again (stamped members are
-- read again from Redis, the same).
local function forget_checks()
  stamped = {}
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
    -- (Sized at once: address, set and country are the shared-key step's, check_step.)
    done = { members = {}, size = 0, address = false, set = false, country = false }
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

local function check_step(KEYS, k, set, ARGV, i, h)
  local L, A, C = KEYS[k + 2], KEYS[k + 3], KEYS[k + 5]
  if allowed(KEYS[k + 4]) then
    -- (It observes nothing, but keeps its place among the call's checks: loop.lua.)
    if set.loop then loop_gap(L) end
    return ALLOW_LISTED
  end
  load(KEYS[k + 1])

  local out = NOTHING

  -- prompt loops
  local p = set.loop
  if p then
    i = i + 1
    local window, distance = p[1], p[3]
    local exact, near = observe_loop(L, ARGV, i, window, p[2], distance)
    -- (Below the lowest threshold, most checks: no level to work out. subject.lua set_of.)
    local low = set.loop_low
    if exact >= low or (distance > 0 and near >= low * p[4]) then
      local near_factor, alert_at, throttle_at, block_at = p[4], p[5], p[6], p[7]
      local by_exact = level_of(exact, alert_at, throttle_at, block_at, 1)
      local by_near = 0
      if distance > 0 then by_near = level_of(near, alert_at, throttle_at, block_at, near_factor) end
      local level = math.max(by_exact, by_near)
      local hold = window
      if level == 3 then hold = p[8] end
      if level > 0 and raise('loop', level, hold) then
        local thresholds = { alert_at, throttle_at, block_at }
        local value, scale = exact, 1
        if by_exact < by_near then value, scale = near, near_factor end
        out = push_check(out, 'loop', level, value, math.ceil(thresholds[level] * scale), '')
      end
    end
  end

  -- shared keys (skipped when the step before on this key, in this call, had the same address,
  -- country and set: it would change nothing and raise nothing again, the call's time standing
  -- still)
  p = set.addr
  local cp = set.country
  local address, country
  if p then
    address = ARGV[h[6]]
    if cp then country = ARGV[h[7]] end
    if not address or (cp and not country) then error('a shared-key check names its address and country') end
  end
  -- (stamped[A]: what the last shared-key step on A in this call observed.)
  local last = p and stamped[A]
  if p and not (last and last.address == address and last.set == set and (not cp or last.country == country)) then
    local window, cap = p[1], p[2]
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
    local counted = cp ~= nil
    local countries, by_countries = 0, false
    local country_alert_at, country_block_at = 0, 0
    if counted then
      country_alert_at, country_block_at = cp[2], cp[3]
      countries = observe_seen(C, country, since, window, cp[1], 'co', 'xc')
      local by_country = 0
      if country_block_at > 0 and countries >= country_block_at then
        by_country = 3
      elseif country_alert_at > 0 and countries >= country_alert_at then
        by_country = 1
      end
      if by_country > level then level, by_countries = by_country, true end
    end
    if level > 0 then hx = 1 end
    -- (put's test inline: an absent field reads as its default in subject.lua's DEFAULTS.)
    if (H.he or DEFAULTS.he) ~= he then put('he', he) end
    if (H.hp or DEFAULTS.hp) ~= hp then put('hp', hp) end
    if (H.hx or DEFAULTS.hx) ~= hx then put('hx', hx) end
    if (H.hb or DEFAULTS.hb) ~= hb then put('hb', hb) end
    if (H.hn or DEFAULTS.hn) ~= hn then put('hn', hn) end
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
    last = stamped[A]
    last.address, last.set, last.country = address, set, country
  end

  -- the gate: a block, a loop's throttle, a spend hold (enforced detectors only)
  -- (flag_at inline: a flag is up while its level is not 0 and its time, when set, has not come;
  -- most subjects have none, and a call a detector costs more than the test.)
  -- (None to look at when no flag stands: subject.lua flagged.)
  local throttled, held, refused = false, false, false
  local scrape_bucket_ms = set.scrape_bucket
  local enforce = set.enforce
  for j = 1, flagged and #enforce or 0 do
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
  -- (save's common case, nothing changed, inline.)
  if nchanged > 0 then save(set.ttl) else pending_ttl = set.ttl end
  return out
end
