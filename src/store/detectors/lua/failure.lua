-- observeFailure (src/core/detectors/engine.ts), gateway-wide. KEYS: state hash, address set.
-- ARGV: address, windowMs, alertAt, addressesAt. Returns {} or { 'stuffing', 1, value, threshold, addresses }.
local A = KEYS[2]
local window, alert_at, addresses_at = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local w = math.floor(now / window)
if num('w', -1) ~= w then
  redis.call('DEL', A)
  redis.call('HSET', S, 'w', w, 'n', 0, 'reported', 0)
end
local n = redis.call('HINCRBY', S, 'n', 1)
local cap = math.max(addresses_at, 1)
if redis.call('SCARD', A) < cap then redis.call('SADD', A, ARGV[1]) end
local distinct = redis.call('SCARD', A)
redis.call('PEXPIRE', S, window * 2)
redis.call('PEXPIRE', A, window * 2)
local by_count = n >= alert_at
local by_addresses = addresses_at > 0 and distinct >= addresses_at
if num('reported', 0) == 1 or not (by_count or by_addresses) then return {} end
redis.call('HSET', S, 'reported', 1)
if by_count then
  return { 'stuffing', 1, fmt(n), fmt(alert_at), table.concat(redis.call('SMEMBERS', A), ',') }
end
return { 'stuffing', 1, fmt(distinct), fmt(addresses_at), table.concat(redis.call('SMEMBERS', A), ',') }
