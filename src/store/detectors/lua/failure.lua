-- observeFailure (src/core/detectors/engine.ts), gateway-wide and per key prefix, a step of
-- batch.lua. KEYS[k + 1] the state hash, KEYS[k + 2] its address set. `set` (subject.lua set_of,
-- kind 'f'): windowMs, alertAt, addressesAt, prefixAddressesAt, maxPrefixes. ARGV[i + 1] the
-- address, ARGV[i + 2] the place in KEYS of the prefix's address set (`<hash>:p:<prefix>`: the
-- prefix is read from its name), 0 when there is none.
-- Every failure step of a gateway shares the hash, so a call reads its fields w n reported np
-- once (HMGET), a prefix's field `p:<prefix>` (1 once reported) once, each set's size once
-- (SCARD, then what SADD adds), and writes what its steps changed with one HSET and each key's
-- expiry with one PEXPIRE when it ends (flush_failures) — not once a step.
-- Returns raised detections, six items each: 'stuffing', 1, value, threshold, addresses, prefix.
local FS, F, F_emptied, F_changed, F_pending, F_order, cards, expires, expire_order

local function start_failures()
  FS, F, F_emptied, F_changed = nil, nil, false, {}
  F_pending, F_order, cards, expires, expire_order = {}, {}, {}, {}, {}
end

-- Writes what the finished steps changed, then each key's expiry.
local function flush_failures()
  if #F_order > 0 then
    local args = {}
    for _, field in ipairs(F_order) do
      args[#args + 1] = field
      args[#args + 1] = fmt(F_pending[field])
    end
    redis.call('HSET', FS, unpack(args))
  end
  for _, key in ipairs(expire_order) do
    redis.call('PEXPIRE', key, expires[key])
  end
  F_pending, F_order, expires, expire_order = {}, {}, {}, {}
end

-- After a step that failed: what the steps before it changed is written, what it changed is not
-- (the next step reads the hash and the set sizes again).
local function forget_failures()
  flush_failures()
  FS, F, cards = nil, nil, {}
end

local function load_failures(key)
  F_changed = {}
  if key == FS then return end
  flush_failures()
  local v = redis.call('HMGET', key, 'w', 'n', 'reported', 'np')
  FS, F_emptied = key, false
  F = {
    w = tonumber(v[1]) or -1, n = tonumber(v[2]) or 0, reported = tonumber(v[3]) or 0, np = tonumber(v[4]) or 0,
  }
end

local function put_f(field, value)
  F[field] = value
  F_changed[#F_changed + 1] = field
end

-- A step done: what it changed is written by the next flush.
local function save_failure()
  for _, field in ipairs(F_changed) do
    if F_pending[field] == nil then F_order[#F_order + 1] = field end
    F_pending[field] = F[field]
  end
end

-- Members of a set, read once a call and kept as SADD grows it.
local function card(key)
  local c = cards[key]
  if c == nil then
    c = redis.call('SCARD', key)
    cards[key] = c
  end
  return c
end

-- Adds `member` while the set holds fewer than `cap`; returns its size.
local function add_capped(key, member, cap)
  local c = card(key)
  if c < cap then
    c = c + redis.call('SADD', key, member)
    cards[key] = c
  end
  return c
end

local function expire_at_end(key, ms)
  if expires[key] == nil then expire_order[#expire_order + 1] = key end
  expires[key] = ms
end

local function failure_step(KEYS, k, set, ARGV, i)
  local S, A = KEYS[k + 1], KEYS[k + 2]
  load_failures(S)
  local window, alert_at, addresses_at, prefix_at, max_prefixes = set[1], set[2], set[3], set[4], set[5]
  local address, pk = ARGV[i + 1], number(ARGV[i + 2])
  local w = math.floor(now / window)
  if F.w ~= w then
    -- A new window: the counts, the addresses and the prefixes tracked start again.
    redis.call('DEL', S, A)
    F, F_emptied, F_pending, F_order = { w = w, n = 0, reported = 0, np = 0 }, true, {}, {}
    cards[A] = 0
    for _, field in ipairs({ 'w', 'n', 'reported', 'np' }) do F_changed[#F_changed + 1] = field end
  end
  local out = {}
  put_f('n', F.n + 1)
  local distinct = add_capped(A, address, math.max(addresses_at, 1))
  expire_at_end(S, window * 2)
  expire_at_end(A, window * 2)
  local by_count = F.n >= alert_at
  local by_addresses = addresses_at > 0 and distinct >= addresses_at
  if F.reported == 0 and (by_count or by_addresses) then
    put_f('reported', 1)
    local value, threshold = distinct, addresses_at
    if by_count then value, threshold = F.n, alert_at end
    local all = table.concat(redis.call('SMEMBERS', A), ',')
    for _, x in ipairs({ 'stuffing', 1, fmt(value), fmt(threshold), all, '' }) do out[#out + 1] = x end
  end

  -- per key prefix: field 'p:<prefix>' in the hash marks it tracked this window (1 once reported)
  if pk ~= 0 and prefix_at > 0 then
    local P = KEYS[pk]
    local prefix = string.sub(P, #S + 4)
    local field = 'p:' .. prefix
    local reported = F[field]
    if reported == nil then
      reported = false
      if not F_emptied then reported = tonumber(redis.call('HGET', S, field)) or false end
      F[field] = reported
    end
    if not reported and F.np < max_prefixes then
      redis.call('DEL', P) -- a set left from an earlier window
      cards[P] = 0
      put_f(field, 0)
      put_f('np', F.np + 1)
      reported = 0
    end
    if reported then
      local size = add_capped(P, address, prefix_at)
      expire_at_end(P, window * 2)
      if reported == 0 and size >= prefix_at then
        put_f(field, 1)
        local all = table.concat(redis.call('SMEMBERS', P), ',')
        for _, x in ipairs({ 'stuffing', 1, fmt(size), fmt(prefix_at), all, prefix }) do out[#out + 1] = x end
      end
    end
  end
  save_failure()
  return out
end
