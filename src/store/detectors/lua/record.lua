-- recordSubject (src/core/detectors/engine.ts). KEYS: subject hash, allow key.
-- Returns raised detections, five items each: detector, level, value, threshold, ''.
local ttl = tonumber(ARGV[1])
if allowed(KEYS[2]) then return {} end
local out = {}
local function push(a, b, c, d, e)
  out[#out + 1] = a
  out[#out + 1] = b
  out[#out + 1] = c
  out[#out + 1] = d
  out[#out + 1] = e
end

if ARGV[2] == '1' then
  local factor, bucket_ms, sustain, keep, floor_ = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local amount, hold = tonumber(ARGV[8]), ARGV[9] == '1'
  local b, m, s, h = roll_spend(factor, bucket_ms, keep, floor_)
  s = s + amount
  save_spend(b, m, s, h)
  local baseline = math.max(b, floor_)
  if s >= factor * baseline and h + 1 >= sustain then
    local level, hold_ms = 1, sustain * bucket_ms
    if hold then level, hold_ms = 2, 0 end
    if raise('spend', level, hold_ms) then
      push('spend', level, fmt(s), fmt(factor * baseline), '')
    end
  end
end

if ARGV[10] == '1' then
  local used, bucket_ms, share, for_buckets = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
  local bucket = math.floor(now / bucket_ms)
  local m, hi, c = num('cm', -1), num('chi', 0), num('cc', 0)
  if bucket ~= m then
    if m >= 0 and bucket == m + 1 and hi == 1 then c = c + 1 else c = 0 end
    m, hi = bucket, 0
  end
  if used >= share then hi = 1 end
  redis.call('HSET', S, 'cm', m, 'chi', hi, 'cc', c)
  local buckets = 0
  if hi == 1 then buckets = c + 1 end
  local level = 1
  if ARGV[15] == '1' then level = 2 end
  if buckets >= for_buckets and raise('scraping', level, for_buckets * bucket_ms) then
    push('scraping', level, fmt(buckets), fmt(for_buckets), '')
  end
end
redis.call('PEXPIRE', S, ttl)
return out
