-- sluice: what the algorithm parts (lua/*.lua) and the batch driver (apply.lua) share. script.ts
-- assembles the library: this prelude, then each registered algorithm's part as
-- `ALGORITHMS[kind] = (function() <its file> end)()`, then apply.lua.

local EPSILON_MS = 0.001
local INF = math.huge
local floor, ceil = math.floor, math.ceil
local call, format, match = redis.call, string.format, string.match
local pack, unpack_state = struct.pack, struct.unpack

-- Redis's clock (ms) for the batch being applied: set first thing by apply().
local now

-- Exact text for a stored number: integers as such (cheap, and Redis keeps them as integers).
local function numtext(x)
  if x == floor(x) and x > -9e15 and x < 9e15 then return format('%d', x) end
  return format('%.17g', x)
end

-- A TTL argument: whole ms, at least 1, at most ~31,000 years (a bucket that refills once an
-- aeon still gets a TTL Redis accepts), written as digits (a Lua number would become "1e+15").
local MAX_TTL_MS = 1e15
local function px(ms)
  ms = ceil(ms)
  if ms < 1 then ms = 1 elseif ms > MAX_TTL_MS then ms = MAX_TTL_MS end
  return format('%d', ms)
end

-- Slack for sums of fractional units (src/core/step.ts).
local function fits(used, cost, limit)
  return used + cost <= limit + limit * 1e-12
end

-- The algorithms by kind (src/core/algorithms/index.ts). Each part is a table with:
--   width   numbers it keeps under the subject's state key (0: it keeps its own key instead)
--   params(values) -> p: the limit's parameters from the numbers its TS description sends
--     (once per policy and batch); p.capacity and p.window_ms are read for alerts
--   check(p, cost, op, stored...) and adjust(p, delta, op, stored...) -> allowed, remaining,
--     reset_ms, retry_ms, then the new stored numbers (width > 0) or a change for write()
--   write(p, key, change, reset_ms): only with width 0, once the op is admitted
--   in_flight: counts calls in flight (its denials are no strikes)
-- `op` tells a step: id, hold (take a lease), peek, release, charged_at, charged, key.
local ALGORITHMS = {}
