-- The check, record and failure steps issued in one event-loop turn, in one script call (all
-- their keys in one hash slot on a cluster: src/store/detectors/batch.ts groups them). Each step
-- is decided alone, in order, as if it were a script call of its own; a step that fails answers
-- { 'error', message } and the others go on.
-- KEYS: each subject's keys once — five for a check or record subject (its hash, loop
-- fingerprints, address hash, allow key, country hash), two for the failed keys' (its hash and
-- address set) — and the keys a step names by place (a failed key's prefix set). ARGV: the number
-- of detector sets, the sets (subject.lua set_of), then per step its head — kind ('c' check, 'r'
-- record, 'f' failure), the place of its subject's first key in KEYS less one and its set's place
-- in ARGV, as 'c<k>.<set>' — and its arguments (as many as its set says). Reply: one reply per
-- step, in order (0 for a step with nothing to say, read as an empty list). The subject hash last
-- changed (subject.lua), the loop strings the steps changed (check.lua) and the failed keys' hash
-- (failure.lua) are written after the last step.
-- steps(KEYS, ARGV) is the call (src/store/detectors/redis.ts).
local STEPS = { c = check_step, r = record_step, f = failure_step }

-- Heads parsed once and kept by their text ({ step, kind, first key - 1, set's argument }), at most
-- HEADS_MAX, all forgotten when one more comes.
local HEADS_MAX = 1024
local heads, heads_count = {}, 0
local function head_of(text)
  local h = heads[text]
  if h then return h end
  local kind, k, set = string.match(text, '^(%a)(%d+)%.(%d+)$')
  h = { STEPS[kind], kind, tonumber(k), tonumber(set) + 1 }
  if heads_count >= HEADS_MAX then heads, heads_count = {}, 0 end
  heads[text], heads_count = h, heads_count + 1
  return h
end

-- The steps from ARGV[i] on, each reply to replies[s]; a step that fails throws (run_steps'
-- caller answers for it and goes on with the next). One pcall for the run, not one a step (~600
-- instructions); `failing` says whether a step began (else its head or set could not be read).
local replies, s, i, failing, failing_kind

local function run_steps(KEYS, ARGV, n)
  while i <= n do
    local text = ARGV[i]
    local h = heads[text] or head_of(text)
    -- (The set of the head's place: kept in the head while its text stays the same.)
    local set_text = ARGV[h[4]]
    local set = h.set
    if h.set_text ~= set_text then
      set = set_of(h[2], set_text)
      h.set, h.set_text = set, set_text
    end
    failing, failing_kind = 1 + set.nargs, h[2]
    replies[s + 1] = h[1](KEYS, h[3], set, ARGV, i)
    failing = nil
    s = s + 1
    i = i + 1 + set.nargs
  end
end

local function steps(KEYS, ARGV)
  start_call()
  start_subjects()
  start_checks()
  start_failures()
  replies, s, failing = {}, 0, nil
  i = number(ARGV[1]) + 2
  local n = #ARGV
  while i <= n do
    local ok, err = pcall(run_steps, KEYS, ARGV, n)
    if not ok then
      if not failing then error(err) end
      if failing_kind == 'f' then
        forget_failures()
      else
        forget()
        forget_checks()
      end
      if type(err) == 'table' then err = err.err or 'error' end
      s = s + 1
      replies[s] = { 'error', tostring(err) }
      i = i + failing
      failing = nil
    end
  end
  flush()
  write_loops()
  flush_failures()
  return replies
end
