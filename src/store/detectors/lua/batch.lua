-- The check and record steps issued in one event-loop turn, in one script call (all their keys in
-- one hash slot on a cluster: src/store/detectors/batch.ts groups them). Each step is decided
-- alone, in order, as if it were a script call of its own; a step that fails answers
-- { 'error', message } and the others go on.
-- KEYS: five a subject (its hash, loop fingerprints, address hash, allow key, country hash), each
-- subject once. ARGV: the number of detector sets, the sets (subject.lua set_of), then per step
-- its head — kind ('c' check, 'r' record), its subject's place in KEYS and its set's place in
-- ARGV, as 'c<subject>.<set>' — and its arguments (as many as its set says). Reply: one reply per
-- step, in order. The subject hash last changed (subject.lua) and the loop strings the steps
-- changed (check.lua) are written after the last step. steps(KEYS, ARGV) is the call
-- (src/store/detectors/redis.ts).
local STEPS = { c = check_step, r = record_step }

-- Heads parsed once and kept by their text ({ step, first key - 1, set's argument }), at most
-- HEADS_MAX, all forgotten when one more comes.
local HEADS_MAX = 1024
local heads, heads_count = {}, 0
local function head_of(text)
  local h = heads[text]
  if h then return h end
  local kind, subject, set = string.match(text, '^(%a)(%d+)%.(%d+)$')
  h = { STEPS[kind], kind, (tonumber(subject) - 1) * 5, tonumber(set) + 1 }
  if heads_count >= HEADS_MAX then heads, heads_count = {}, 0 end
  heads[text], heads_count = h, heads_count + 1
  return h
end

local function steps(KEYS, ARGV)
  start_call()
  start_subjects()
  start_checks()
  local replies = {}
  local i, n, s = number(ARGV[1]) + 2, #ARGV, 0
  while i <= n do
    local h = head_of(ARGV[i])
    local set = set_of(h[2], ARGV[h[4]])
    local ok, reply = pcall(h[1], KEYS, h[3], set, ARGV, i)
    if not ok then
      forget()
      if type(reply) == 'table' then reply = reply.err or 'error' end
      reply = { 'error', tostring(reply) }
    end
    s = s + 1
    replies[s] = reply
    i = i + 1 + set.nargs
  end
  flush()
  write_loops()
  return replies
end
