-- The check and record steps issued in one event-loop turn, in one script call (all their keys in
-- one hash slot on a cluster: src/store/detectors/redis.ts groups them). Each step is decided
-- alone, in order, as if it were a script call of its own; a step that fails answers
-- { 'error', message } and the others go on.
-- ARGV: count, then per step: kind ('c' check, 'r' record), its number of keys, its number of
-- arguments, its arguments. KEYS: each step's keys in turn. Reply: one reply per step, in order.
-- The subject hash last changed (subject.lua) and the loop strings the steps changed (check.lua)
-- are written after the last step. steps(KEYS, ARGV) is the call (src/store/detectors/redis.ts).
local STEPS = { c = check_step, r = record_step }
local function steps(KEYS, ARGV)
  start_call()
  start_subjects()
  start_checks()
  local replies = {}
  local k, i = 0, 2
  for s = 1, number(ARGV[1]) do
    local step, nkeys, nargs = STEPS[ARGV[i]], number(ARGV[i + 1]), number(ARGV[i + 2])
    local keys = { unpack(KEYS, k + 1, k + nkeys) }
    local a = { unpack(ARGV, i + 3, i + 2 + nargs) }
    local ok, reply = pcall(step, keys, a)
    if not ok then
      forget()
      if type(reply) == 'table' then reply = reply.err or 'error' end
      reply = { 'error', tostring(reply) }
    end
    replies[s] = reply
    k, i = k + nkeys, i + 3 + nargs
  end
  flush()
  write_loops()
  return replies
end
