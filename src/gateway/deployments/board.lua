-- What the gateway knows of its deployments' provider accounts, shared by every instance on this
-- Redis: one JSON value per deployment, times on Redis's clock (TIME), like every limit's state.
--
-- KEYS: one key per deployment.
-- ARGV[1] = "read": returns, per key, {coolMs, fullRequestsMs, fullTokensMs, limitRequests,
--   limitTokens} — milliseconds left (0: none) and the provider's reported limits (0: none).
-- ARGV[1] = "write" (one key): ARGV[2..7] = coolMs, fullRequestsMs, fullTokensMs, limitRequests,
--   limitTokens, limitsMs (-1 leaves a field as it is). A cool-down or "full" mark is extended,
--   never shortened; reported limits replace the last ones for limitsMs.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function load(key)
  local raw = redis.call('GET', key)
  if not raw then return {} end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return {}
end

local function left(v, until_field)
  local u = tonumber(v[until_field] or 0) or 0
  if u > now then return u - now end
  return 0
end

if ARGV[1] == 'read' then
  local out = {}
  for i, key in ipairs(KEYS) do
    local v = load(key)
    local live = left(v, 'lu') > 0
    out[i] = {
      left(v, 'cu'), left(v, 'ru'), left(v, 'tu'),
      live and (tonumber(v.lr or 0) or 0) or 0,
      live and (tonumber(v.lt or 0) or 0) or 0,
    }
  end
  return out
end

local v = load(KEYS[1])
local function extend(field, ms)
  ms = tonumber(ms)
  if ms >= 0 and now + ms > (tonumber(v[field] or 0) or 0) then v[field] = now + ms end
end
extend('cu', ARGV[2])
extend('ru', ARGV[3])
extend('tu', ARGV[4])
local limits_ms = tonumber(ARGV[7])
if limits_ms >= 0 then
  if tonumber(ARGV[5]) >= 0 then v.lr = tonumber(ARGV[5]) end
  if tonumber(ARGV[6]) >= 0 then v.lt = tonumber(ARGV[6]) end
  v.lu = now + limits_ms
end
local last = now + 1
for _, f in ipairs({ 'cu', 'ru', 'tu', 'lu' }) do
  local u = tonumber(v[f] or 0) or 0
  if u > last then last = u end
end
redis.call('SET', KEYS[1], cjson.encode(v), 'PX', last - now)
return 1
