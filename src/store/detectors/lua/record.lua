-- recordSubject (src/core/detectors/engine.ts) for one subject, a step of batch.lua.
-- The subject's keys are KEYS[k + 1] (its hash) … KEYS[k + 5] (as check.lua); `set` its record
-- set (subject.lua set_of); its arguments follow ARGV[i]: the amount when spend is on, the share
-- used when scraping is (src/store/detectors/redis.ts record).
-- Returns raised detections, five items each: detector, level, value, threshold, ''.
local function push_raised(out, detector, level, value, threshold)
  out[#out + 1] = detector
  out[#out + 1] = level
  out[#out + 1] = value
  out[#out + 1] = threshold
  out[#out + 1] = ''
end

local function record_step(KEYS, k, set, ARGV, i)
  if allowed(KEYS[k + 4]) then return {} end
  load(KEYS[k + 1])
  local out = {}

  local p = set.spend
  if p then
    i = i + 1
    local factor, bucket_ms, sustain, keep, floor_ = p[1], p[2], p[3], p[4], p[5]
    local amount, hold = tonumber(ARGV[i]), p[6] == 1
    local b, m, s, h = roll_spend(factor, bucket_ms, keep, floor_)
    s = s + amount
    save_spend(b, m, s, h)
    local baseline = math.max(b, floor_)
    if s >= factor * baseline and h + 1 >= sustain then
      local level, hold_ms = 1, sustain * bucket_ms
      if hold then level, hold_ms = 2, 0 end
      if raise('spend', level, hold_ms) then
        push_raised(out, 'spend', level, fmt(s), fmt(factor * baseline))
      end
    end
  end

  p = set.scrape
  if p then
    i = i + 1
    local used, bucket_ms, share, for_buckets = tonumber(ARGV[i]), p[1], p[2], p[3]
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
      push_raised(out, 'scraping', level, fmt(buckets), fmt(for_buckets))
    end
  end
  save(set.ttl)
  return out
end
