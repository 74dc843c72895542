-- Shared by the detector scripts: Redis TIME, flags and thresholds, as in
-- src/core/detectors/state.ts (raise, flagAt, levelOf). KEYS[1] is the subject's hash.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local S = KEYS[1]

local function num(field, default)
  local v = redis.call('HGET', S, field)
  if v then return tonumber(v) end
  return default
end

local function flag_at(name)
  local lv = num(name .. '.lv', 0)
  local u = num(name .. '.u', 0)
  if lv == 0 or (u > 0 and now >= u) then return 0, 0 end
  return lv, u
end

local function raise(name, level, hold_ms)
  if level <= 0 then return false end
  local lv, u = flag_at(name)
  local until_ = 0
  if hold_ms > 0 then until_ = now + hold_ms end
  if level > lv then
    redis.call('HSET', S, name .. '.lv', level, name .. '.u', until_)
    return true
  end
  if level == lv and u > 0 then
    if until_ == 0 then
      redis.call('HSET', S, name .. '.u', 0)
    elseif until_ > u then
      redis.call('HSET', S, name .. '.u', until_)
    end
  end
  return false
end

local function level_of(n, alert_at, throttle_at, block_at, scale)
  if block_at > 0 and n >= block_at * scale then return 3 end
  if throttle_at > 0 and n >= throttle_at * scale then return 2 end
  if n >= alert_at * scale then return 1 end
  return 0
end

local function allowed(allow_key)
  local a = redis.call('GET', allow_key)
  if not a then return false end
  a = tonumber(a)
  return a == -1 or a > now
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
  redis.call('HSET', S, 'sb', string.format('%.17g', b), 'sm', m, 'ss', string.format('%.17g', s), 'sh', h)
end

local function fmt(x)
  return string.format('%.17g', x)
end
