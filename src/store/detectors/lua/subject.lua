-- One subject's hash for a check or record step: read with one HGETALL when the step starts (not
-- again for the next step of the same subject in this script call, nothing else writes it), the
-- fields its steps change written with one HSET when the call moves on to another subject or
-- ends (flush: once per subject and call, not once per step), as in src/core/detectors/state.ts
-- (raise, flagAt, rollSpend). Fields: <detector>.lv/.u (flags); he hp hx hb hn (the shared-key
-- history) and ao (a lower bound of the oldest address's last sighting; co for countries); rm rn
-- (the loop throttle's minute); sb sm ss sh (spend); cm chi cc (scraping); xs xl xa xc (until when
-- the hash, the loop string, the address and country hashes are kept at least: see renew).
local FIELDS = {
  'loop.lv', 'loop.u', 'spend.lv', 'spend.u', 'sharedKey.lv', 'sharedKey.u', 'scraping.lv', 'scraping.u',
  'he', 'hp', 'hx', 'hb', 'hn', 'ao', 'co', 'rm', 'rn', 'sb', 'sm', 'ss', 'sh', 'cm', 'chi', 'cc',
  'xs', 'xl', 'xa', 'xc',
}
local KNOWN = {}
for _, field in ipairs(FIELDS) do
  KNOWN[field] = true
end
-- S: the subject's hash read (H its fields), exists: whether Redis holds it. changed[1..nchanged]:
-- the fields the step changed (one list for every step: a table made a step costs Redis ~1k
-- instructions).
-- flagged: whether a flag may stand (a level not 0 read or raised since): when none does, a
-- check's gate has nothing to look at.
local S, H, exists, flagged
local changed, nchanged = {}, 0

-- A step's detector set: the parameters of every detector it runs, one text, the same for every
-- request of a detector set (src/store/detectors/redis.ts), parsed once and kept by its text
-- (across calls while the library stays loaded; at most SETS_MAX texts, all forgotten when one
-- more comes: detector sets are few). Parts are separated by '|', numbers by ','; '' is off.
local SETS_MAX = 64
local sets, sets_count = { c = {}, r = {}, f = {} }, 0

local function numbers_of(text)
  if text == '' then return nil end
  local p = {}
  for x in string.gmatch(text, '[^,]+') do p[#p + 1] = tonumber(x) end
  return p
end

local function parts_of(text)
  local out, from = {}, 1
  while true do
    local at = string.find(text, '|', from, true)
    if not at then
      out[#out + 1] = string.sub(text, from)
      return out
    end
    out[#out + 1] = string.sub(text, from, at - 1)
    from = at + 1
  end
end

-- kind 'c' (check): ttl | enforced detectors (names) | the throttle's rate per minute | loop
-- (windowMs, max, distance, nearFactor, alertAt, throttleAt, blockAt, blockMs) | addresses
-- (windowMs, cap, alertAt, blockAt, blockMs, factor, minAddresses, warmup, keep) | spend (factor,
-- bucketMs, sustain, keep, floor) | the scraping bucket (0: no throttle) | countries (cap,
-- alertAt, blockAt). kind 'r' (record): ttl | spend (factor, bucketMs, sustain, keep, floor,
-- hold 1/0) | scraping (bucketMs, share, forBuckets, throttle 1/0). kind 'f' (a failed key,
-- failure.lua): windowMs, alertAt, addressesAt, prefixAddressesAt, maxPrefixes.
-- nargs: how many arguments a step of the set has of its own (check: the fingerprint when
-- loops are on; record: the
-- amount when spend is on, the share used when scraping is; failure: the address and the prefix's
-- set).
local function set_of(kind, text)
  local set = sets[kind][text]
  if set then return set end
  local p = kind ~= 'f' and parts_of(text)
  if kind == 'c' then
    local enforce = {}
    for name in string.gmatch(p[2], '[^,]+') do enforce[#enforce + 1] = name end
    set = {
      ttl = tonumber(p[1]), enforce = enforce, throttle = tonumber(p[3]), loop = numbers_of(p[4]),
      addr = numbers_of(p[5]), spend = numbers_of(p[6]), scrape_bucket = tonumber(p[7]),
      country = numbers_of(p[8]),
    }
    -- (The address and the country are texts the step's head names: batch.lua.)
    set.nargs = set.loop and 1 or 0
    -- The loop's lowest threshold that raises a level (0 is off, but an alertAt of 0 raises at once).
    local l = set.loop
    if l then
      local low = l[5]
      if l[6] > 0 and l[6] < low then low = l[6] end
      if l[7] > 0 and l[7] < low then low = l[7] end
      set.loop_low = low
    end
  elseif kind == 'r' then
    set = { ttl = tonumber(p[1]), spend = numbers_of(p[2]), scrape = numbers_of(p[3]) }
    set.nargs = (set.spend and 1 or 0) + (set.scrape and 1 or 0)
  else
    -- By place (a part that is no number stays nil: its steps fail, not read the next part).
    set = { nargs = 2 }
    local j = 0
    for x in string.gmatch(text .. ',', '([^,]*),') do
      j = j + 1
      set[j] = tonumber(x)
    end
  end
  if sets_count >= SETS_MAX then sets, sets_count = { c = {}, r = {}, f = {} }, 0 end
  sets[kind][text], sets_count = set, sets_count + 1
  return set
end

-- What the finished steps of S changed and have not written yet (field -> value), and their ttl.
local pending, pending_fields, pending_ttl

-- At the start of a call: no subject read, nothing pending.
local function start_subjects()
  S, H, exists, nchanged = nil, nil, false, 0
  pending, pending_fields, pending_ttl = {}, {}, nil
end

-- Writes what the finished steps of S changed and keeps the hash for their ttl.
local function flush()
  if S == nil then return end
  local args = {}
  for _, field in ipairs(pending_fields) do
    args[#args + 1] = field
    args[#args + 1] = fmt(pending[field])
  end
  local ttl = pending_ttl
  pending, pending_fields, pending_ttl = {}, {}, nil
  -- (No hash and nothing to write: none is made.)
  local expire = false
  if ttl and (exists or #args > 0) then
    local until_ = H.xs
    if not exists or until_ == nil or until_ < now + ttl then
      until_ = now + ttl + math.floor(ttl / 64)
      H.xs = until_
      args[#args + 1] = 'xs'
      args[#args + 1] = fmt(until_)
      expire = until_ - now
    end
  end
  if #args > 0 then
    redis.call('HSET', S, unpack(args))
    exists = true
  end
  if expire then redis.call('PEXPIRE', S, expire) end
end

local function load(key)
  nchanged = 0
  if key == S then return end
  flush()
  S, H = key, {}
  -- HGETALL, not HMGET of every field: one argument, not 24, and only the fields there are.
  local v = redis.call('HGETALL', key)
  exists = #v > 0
  -- (number's cache read inline: a call a field costs more than the read.)
  for i = 1, #v, 2 do
    local field = v[i]
    if KNOWN[field] then
      local text = v[i + 1]
      local x = numbers[text]
      if x == nil then x = number(text) end
      H[field] = x
    end
  end
  local a, b, c, d = H['loop.lv'], H['spend.lv'], H['sharedKey.lv'], H['scraping.lv']
  flagged = (a ~= nil and a ~= 0) or (b ~= nil and b ~= 0) or (c ~= nil and c ~= 0) or (d ~= nil and d ~= 0)
end

-- After a step that failed: what the steps before it changed is written, what it changed is not
-- (the next step of its subject reads the hash again).
local function forget()
  flush()
  S, H = nil, nil
end

local function num(field, default)
  local v = H[field]
  if v == nil then return default end
  return v
end

-- What a field reads as while the hash does not hold it (num's defaults). A field never set
-- to anything else is not written: most subjects never alert, spike or scrape, and each field
-- the hash holds costs every script call that reads it (HGETALL's reply, a Lua string each for
-- the field and its value, the loop over them) ~2-3k Redis instructions.
local DEFAULTS = {
  ['loop.lv'] = 0, ['loop.u'] = 0, ['spend.lv'] = 0, ['spend.u'] = 0, ['sharedKey.lv'] = 0,
  ['sharedKey.u'] = 0, ['scraping.lv'] = 0, ['scraping.u'] = 0,
  he = -1, hp = 0, hx = 0, hb = 0, hn = 0, ao = 0, co = 0, rm = -1, rn = 0, sb = 0, sm = -1, ss = 0, sh = 0,
  cm = -1, chi = 0, cc = 0,
}

local function put(field, value)
  local old = H[field]
  if old == nil then old = DEFAULTS[field] end
  if old ~= value then
    H[field] = value
    nchanged = nchanged + 1
    changed[nchanged] = field
  end
end

-- A key kept `ms` after now, whose keep-until time is in field `x` of the subject's hash: its
-- expiry is pushed on (PEXPIRE) only when that time comes within ms of now, and then to ms and a
-- 64th of ms after now — not on every call (a redis.call costs ~6-9k instructions) — so the key
-- lives ms to ms + ms/64 after the last step that touched it. Redis holds a key's expiry at x
-- at least: an x from the hash is trusted only while the key is there (`fresh`: it was not, or
-- was emptied, before this step wrote it). Returns whether to PEXPIRE it, and for how long.
local function renew(x, ms, fresh)
  local until_ = H[x]
  if not fresh and until_ ~= nil and until_ >= now + ms then return false, until_ - now end
  until_ = now + ms + math.floor(ms / 64)
  put(x, until_)
  return true, until_ - now
end

-- A step done: what it changed is written by the next flush, the hash kept for ttl.
local function save(ttl)
  for j = 1, nchanged do
    local field = changed[j]
    if pending[field] == nil then pending_fields[#pending_fields + 1] = field end
    pending[field] = H[field]
  end
  pending_ttl = ttl
end

-- Each flag's fields, named once (not joined again on every step).
local LV, U = {}, {}
for _, name in ipairs({ 'loop', 'spend', 'sharedKey', 'scraping' }) do
  LV[name], U[name] = name .. '.lv', name .. '.u'
end

local function flag_at(name)
  local lv = num(LV[name], 0)
  local u = num(U[name], 0)
  if lv == 0 or (u > 0 and now >= u) then return 0, 0 end
  return lv, u
end

local function raise(name, level, hold_ms)
  if level <= 0 then return false end
  local lv, u = flag_at(name)
  local until_ = 0
  if hold_ms > 0 then until_ = now + hold_ms end
  if level > lv then
    put(LV[name], level)
    put(U[name], until_)
    flagged = true
    return true
  end
  if level == lv and u > 0 then
    if until_ == 0 then
      put(U[name], 0)
    elseif until_ > u then
      put(U[name], until_)
    end
  end
  return false
end

-- spend velocity (state.ts rollSpend), fields sb (baseline), sm (bucket), ss (spend), sh (spikes in a row)
local function roll_spend(factor, bucket_ms, keep, floor_)
  local bucket = math.floor(now / bucket_ms)
  local b, m, s, h = num('sb', 0), num('sm', -1), num('ss', 0), num('sh', 0)
  if m < 0 then
    m, s, h = bucket, 0, 0
  elseif bucket > m then
    local was_spike = s >= factor * math.max(b, floor_)
    if not was_spike then b = b * keep + s * (1 - keep) end
    local gap = bucket - m - 1
    if gap > 0 then b = b * (keep ^ gap) end
    if was_spike and gap == 0 then h = h + 1 else h = 0 end
    m, s = bucket, 0
  end
  return b, m, s, h
end

local function save_spend(b, m, s, h)
  put('sb', b)
  put('sm', m)
  put('ss', s)
  put('sh', h)
end
