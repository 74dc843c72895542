-- recordSubject (src/core/detectors/engine.ts) for one subject, a step of batch.lua.
-- keys: subject hash, allow key. a: ttl, spend parameters (factor, bucketMs, sustain, keep, floor;
-- '' when off), the amount, whether to hold ('1'), scraping parameters (bucketMs, share,
-- forBuckets, throttle 1/0; '' when off), the share used (src/store/detectors/redis.ts record).
-- Returns raised detections, five items each: detector, level, value, threshold, ''.
local function record_step(keys, a)
  local ttl = number(a[1])
  if allowed(keys[2]) then return {} end
  load(keys[1])
  local out = {}
  local function push(detector, level, value, threshold)
    out[#out + 1] = detector
    out[#out + 1] = level
    out[#out + 1] = value
    out[#out + 1] = threshold
    out[#out + 1] = ''
  end

  if a[2] ~= '' then
    local p = params(a[2])
    local factor, bucket_ms, sustain, keep, floor_ = p[1], p[2], p[3], p[4], p[5]
    local amount, hold = tonumber(a[3]), a[4] == '1'
    local b, m, s, h = roll_spend(factor, bucket_ms, keep, floor_)
    s = s + amount
    save_spend(b, m, s, h)
    local baseline = math.max(b, floor_)
    if s >= factor * baseline and h + 1 >= sustain then
      local level, hold_ms = 1, sustain * bucket_ms
      if hold then level, hold_ms = 2, 0 end
      if raise('spend', level, hold_ms) then
        push('spend', level, fmt(s), fmt(factor * baseline))
      end
    end
  end

  if a[5] ~= '' then
    local p = params(a[5])
    local used, bucket_ms, share, for_buckets = tonumber(a[6]), p[1], p[2], p[3]
    local bucket = math.floor(now / bucket_ms)
    local m, hi, c = num('cm', -1), num('chi', 0), num('cc', 0)
    if bucket ~= m then
      if m >= 0 and bucket == m + 1 and hi == 1 then c = c + 1 else c = 0 end
      m, hi = bucket, 0
    end
    if used >= share then hi = 1 end
    put('cm', m)
    put('chi', hi)
    put('cc', c)
    local buckets = 0
    if hi == 1 then buckets = c + 1 end
    local level = 1
    if p[4] == 1 then level = 2 end
    if buckets >= for_buckets and raise('scraping', level, for_buckets * bucket_ms) then
      push('scraping', level, fmt(buckets), fmt(for_buckets))
    end
  end
  save(ttl)
  return out
end
