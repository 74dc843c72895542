-- observeFailure (src/core/detectors/engine.ts), gateway-wide and per key prefix.
-- KEYS: state hash, address set, the prefix's address set (any key name when there is no prefix).
-- ARGV: address, windowMs, alertAt, addressesAt, prefix ('' = none), prefixAddressesAt, maxPrefixes.
-- Returns raised detections, six items each: 'stuffing', 1, value, threshold, addresses, prefix.
-- failure(KEYS, ARGV) is the call (src/store/detectors/redis.ts).
local function failure(KEYS, ARGV)
  start_call()
  local S, A, P = KEYS[1], KEYS[2], KEYS[3]
  local function num(field, default)
    local v = redis.call('HGET', S, field)
    if v then return tonumber(v) end
    return default
  end
  local address, window, alert_at, addresses_at = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
  local prefix, prefix_at, max_prefixes = ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
  local w = math.floor(now / window)
  if num('w', -1) ~= w then
    -- A new window: the counts, the addresses and the prefixes tracked start again.
    redis.call('DEL', S, A)
    redis.call('HSET', S, 'w', w, 'n', 0, 'reported', 0, 'np', 0)
  end
  local out = {}
  local n = redis.call('HINCRBY', S, 'n', 1)
  local cap = math.max(addresses_at, 1)
  if redis.call('SCARD', A) < cap then redis.call('SADD', A, address) end
  local distinct = redis.call('SCARD', A)
  redis.call('PEXPIRE', S, window * 2)
  redis.call('PEXPIRE', A, window * 2)
  local by_count = n >= alert_at
  local by_addresses = addresses_at > 0 and distinct >= addresses_at
  if num('reported', 0) == 0 and (by_count or by_addresses) then
    redis.call('HSET', S, 'reported', 1)
    local value, threshold = distinct, addresses_at
    if by_count then value, threshold = n, alert_at end
    local all = table.concat(redis.call('SMEMBERS', A), ',')
    for _, x in ipairs({ 'stuffing', 1, fmt(value), fmt(threshold), all, '' }) do out[#out + 1] = x end
  end

  -- per key prefix: field 'p:<prefix>' in the hash marks it tracked this window (1 once reported)
  if prefix ~= '' and prefix_at > 0 then
    local field = 'p:' .. prefix
    local reported = redis.call('HGET', S, field)
    if not reported and num('np', 0) < max_prefixes then
      redis.call('DEL', P) -- a set left from an earlier window
      redis.call('HSET', S, field, 0)
      redis.call('HINCRBY', S, 'np', 1)
      reported = '0'
    end
    if reported then
      if redis.call('SCARD', P) < prefix_at then redis.call('SADD', P, address) end
      redis.call('PEXPIRE', P, window * 2)
      local size = redis.call('SCARD', P)
      if reported == '0' and size >= prefix_at then
        redis.call('HSET', S, field, 1)
        local all = table.concat(redis.call('SMEMBERS', P), ',')
        for _, x in ipairs({ 'stuffing', 1, fmt(size), fmt(prefix_at), all, prefix }) do out[#out + 1] = x end
      end
    end
  end
  return out
end
