-- Shared by the detector scripts: Redis TIME (once per script call: every step of a batch sees
-- the same now) and thresholds, as in src/core/detectors/state.ts (levelOf).
-- The definitions are made once per library load when the scripts run as a Redis Function
-- (src/store/detectors/redis.ts), so what belongs to one call is set by start_call, at its start.
local now, allow_listed

local function fmt(x)
  return string.format('%.17g', x)
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
  local a = tonumber(redis.call('GET', allow_key) or '0')
  known = a == -1 or a > now
  allow_listed[allow_key] = known
  return known
end

local function start_call()
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  allow_listed = {}
end
