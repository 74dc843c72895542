-- checkSubject (src/core/detectors/engine.ts). KEYS: subject hash, loop list, address hash, allow key,
-- country hash.
-- Returns { now, allowListed, refusedDetector, refusedLevel, retryAfterMs (-1: until cleared), raised… }
-- where each raised is detector, level, value, threshold, addresses (comma-separated), countries
-- (comma-separated) and which count crossed ('addresses' or 'countries'; '' when countries are not counted).
local L, A, C = KEYS[2], KEYS[3], KEYS[5]
local ttl = tonumber(ARGV[1])
if allowed(KEYS[4]) then return { now, 1, '', 0, 0 } end

local out = { now, 0, '', 0, 0 }
local function push(detector, level, value, threshold, addresses, countries, by)
  out[#out + 1] = detector
  out[#out + 1] = level
  out[#out + 1] = fmt(value)
  out[#out + 1] = fmt(threshold)
  out[#out + 1] = addresses
  out[#out + 1] = countries or ''
  out[#out + 1] = by or ''
end

local function pop32(x)
  local n = 0
  for i = 0, 31 do
    if bit.band(bit.rshift(x, i), 1) == 1 then n = n + 1 end
  end
  return n
end

-- prompt loops
if ARGV[4] == '1' then
  local hash, hi, lo = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
  local window, max, distance, near_factor = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
  local alert_at, throttle_at, block_at, block_ms = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
  redis.call('LPUSH', L, now .. '|' .. hash .. '|' .. hi .. '|' .. lo)
  redis.call('LTRIM', L, 0, max - 1)
  local entries = redis.call('LRANGE', L, 0, -1)
  local since = now - window
  local exact, near, live = 0, 0, 0
  for i = 1, #entries do
    local at, h, ehi, elo = string.match(entries[i], '^(%d+)|([^|]+)|(%d+)|(%d+)$')
    if tonumber(at) <= since then break end
    live = i
    if h == hash then exact = exact + 1 end
    if distance > 0 then
      local d = pop32(bit.bxor(tonumber(ehi), hi)) + pop32(bit.bxor(tonumber(elo), lo))
      if d <= distance then near = near + 1 end
    end
  end
  if live < #entries then redis.call('LTRIM', L, 0, live - 1) end
  redis.call('PEXPIRE', L, window)
  local by_exact = level_of(exact, alert_at, throttle_at, block_at, 1)
  local by_near = 0
  if distance > 0 then by_near = level_of(near, alert_at, throttle_at, block_at, near_factor) end
  local level = math.max(by_exact, by_near)
  local hold = window
  if level == 3 then hold = block_ms end
  if raise('loop', level, hold) then
    local thresholds = { alert_at, throttle_at, block_at }
    local value, scale = exact, 1
    if by_exact < by_near then value, scale = near, near_factor end
    push('loop', level, value, math.ceil(thresholds[level] * scale), '')
  end
end

-- shared keys
if ARGV[16] == '1' then
  local address, window, cap = ARGV[17], tonumber(ARGV[18]), tonumber(ARGV[19])
  local alert_at, block_at, block_ms = tonumber(ARGV[20]), tonumber(ARGV[21]), tonumber(ARGV[22])
  local since = now - window
  local all = redis.call('HGETALL', A)
  local size, known = 0, false
  local kept = {}
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) <= since then
      redis.call('HDEL', A, all[i])
    else
      size = size + 1
      kept[#kept + 1] = all[i]
      if all[i] == address then known = true end
    end
  end
  if known or size < cap then
    redis.call('HSET', A, address, now)
    if not known then
      size = size + 1
      kept[#kept + 1] = address
    end
  end
  redis.call('PEXPIRE', A, window)
  -- the key's history (state.ts learnAddresses): fields he, hp, hx (window, peak, alerted), hb, hn (baseline, windows)
  local factor, min_addresses, warmup, keep = tonumber(ARGV[29]), tonumber(ARGV[30]), tonumber(ARGV[31]), tonumber(ARGV[32])
  local w = math.floor(now / window)
  local he, hp, hx, hb, hn = num('he', -1), num('hp', 0), num('hx', 0), num('hb', 0), num('hn', 0)
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
  local counted = ARGV[34] == '1'
  local countries, by_countries = {}, false
  local country_alert_at, country_block_at = 0, 0
  if counted then
    local country, country_cap = ARGV[35], tonumber(ARGV[36])
    country_alert_at, country_block_at = tonumber(ARGV[37]), tonumber(ARGV[38])
    local seen, known_country = redis.call('HGETALL', C), false
    for i = 1, #seen, 2 do
      if tonumber(seen[i + 1]) <= since then
        redis.call('HDEL', C, seen[i])
      else
        countries[#countries + 1] = seen[i]
        if seen[i] == country then known_country = true end
      end
    end
    if country ~= '' and (known_country or #countries < country_cap) then
      redis.call('HSET', C, country, now)
      if not known_country then countries[#countries + 1] = country end
    end
    if #countries > 0 then redis.call('PEXPIRE', C, window) end
    local by_country = 0
    if country_block_at > 0 and #countries >= country_block_at then
      by_country = 3
    elseif country_alert_at > 0 and #countries >= country_alert_at then
      by_country = 1
    end
    if by_country > level then level, by_countries = by_country, true end
  end
  if level > 0 then hx = 1 end
  redis.call('HSET', S, 'he', he, 'hp', hp, 'hx', hx, 'hb', fmt(hb), 'hn', hn)
  local hold = window
  if level == 3 then hold = block_ms end
  if raise('sharedKey', level, hold) then
    local value, threshold = size, alert_at
    if by_countries then
      value, threshold = #countries, country_alert_at
      if level == 3 then threshold = country_block_at end
    elseif level == 3 then
      threshold = block_at
    elseif by_history then
      threshold = learned
    end
    local by = ''
    if counted then
      by = 'addresses'
      if by_countries then by = 'countries' end
    end
    push('sharedKey', level, value, threshold, table.concat(kept, ','), table.concat(countries, ','), by)
  end
end

-- the gate: a block, a loop's throttle, a spend hold (detectors in ARGV[2] only)
local throttled, held = false, false
for name in string.gmatch(ARGV[2], '[^,]+') do
  local lv, u = flag_at(name)
  if lv == 3 then
    out[3], out[4] = name, 3
    if u == 0 then out[5] = -1 else out[5] = u - now end
    break
  end
  if lv == 2 and name == 'loop' then throttled = true end
  if lv == 2 and name == 'spend' then held = true end
  -- a scraping throttle (state.ts scrapeGate): the rest of a bucket that found the subject at the limit
  local scrape_bucket_ms = tonumber(ARGV[33])
  if lv == 2 and name == 'scraping' and scrape_bucket_ms > 0 then
    local bucket = math.floor(now / scrape_bucket_ms)
    if num('cm', -1) == bucket and num('chi', 0) == 1 then
      out[3], out[4], out[5] = 'scraping', 2, (bucket + 1) * scrape_bucket_ms - now
      break
    end
  end
end
if out[3] == '' and throttled then
  local minute = math.floor(now / 60000)
  local rm, rn = num('rm', -1), num('rn', 0)
  if rm ~= minute then rm, rn = minute, 0 end
  if rn < tonumber(ARGV[3]) then
    redis.call('HSET', S, 'rm', rm, 'rn', rn + 1)
  else
    redis.call('HSET', S, 'rm', rm, 'rn', rn)
    out[3], out[4], out[5] = 'loop', 2, (minute + 1) * 60000 - now
  end
end
if out[3] == '' and held and ARGV[23] == '1' then
  local factor, bucket_ms, keep, floor_ = tonumber(ARGV[24]), tonumber(ARGV[25]), tonumber(ARGV[27]), tonumber(ARGV[28])
  local b, m, s, h = roll_spend(factor, bucket_ms, keep, floor_)
  save_spend(b, m, s, h)
  if s >= math.max(b, floor_) then out[3], out[4], out[5] = 'spend', 2, (m + 1) * bucket_ms - now end
end
if redis.call('EXISTS', S) == 1 then redis.call('PEXPIRE', S, ttl) end
return out
