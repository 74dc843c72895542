-- Shared by the detector scripts: Redis TIME (once per script call: every step of a batch sees
-- the same now) and thresholds, as in src/core/detectors/state.ts (levelOf).
-- The definitions are made once per library load when the scripts run as a Redis Function
-- (src/store/detectors/redis.ts), so what belongs to one call is set by start_call, at its start.
local now, allow_listed

-- A number as text that reads back as the same number: an integer in digits (cheap), any other
-- with 17 significant digits (printf's float path costs Redis several times more).
local function fmt(x)
  if x == math.floor(x) and x >= -1e15 and x <= 1e15 then return string.format('%d', x) end
  return string.format('%.17g', x)
end

-- Numbers from texts that come again and again (counts, ttls, buckets, hash fields): tonumber is
-- strtod, so they are kept by text across calls while the library stays loaded, at most
-- NUMBERS_MAX, all forgotten when one more comes. Texts seldom seen twice use tonumber.
local NUMBERS_MAX = 256
local numbers, numbers_count = {}, 0
local function number(text)
  local x = numbers[text]
  if x == nil then
    x = tonumber(text)
    if x == nil then return nil end
    if numbers_count >= NUMBERS_MAX then numbers, numbers_count = {}, 0 end
    numbers[text], numbers_count = x, numbers_count + 1
  end
  return x
end

local function level_of(n, alert_at, throttle_at, block_at, scale)
  if block_at > 0 and n >= block_at * scale then return 3 end
  if throttle_at > 0 and n >= throttle_at * scale then return 2 end
  if n >= alert_at * scale then return 1 end
  return 0
end

-- Whether the subject is allow-listed (read once per script call: no script writes it).
local function allowed(allow_key)
  local known = allow_listed[allow_key]
  if known ~= nil then return known end
  local v, a = redis.call('GET', allow_key), 0
  if v then a = tonumber(v) end
  known = a == -1 or a > now
  allow_listed[allow_key] = known
  return known
end

local function start_call()
  local t = redis.call('TIME')
  now = number(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  allow_listed = {}
end
