-- The check, record and failure steps issued in one event-loop turn, in one script call (all
-- their keys in one hash slot on a cluster: src/store/detectors/batch.ts groups them). Each step
-- is decided alone, in order, as if it were a script call of its own; a step that fails answers
-- { 'error', message } and the others go on.
-- KEYS: each subject's keys once — five for a check or record subject (its hash, loop
-- fingerprints, address hash, allow key, country hash), two for the failed keys' (its hash and
-- address set) — and the keys a step names by place (a failed key's prefix set). ARGV: the number
-- of shared texts, the texts (the detector sets, subject.lua set_of, and the facts most steps of a
-- call share: a check's address and country), then runs of steps: a head — kind ('c' check, 'r'
-- record, 'f' failure), the place of its subject's first key in KEYS less one, its set's place in
-- ARGV, the places in ARGV of its texts, and how many steps it heads when more than one, as
-- 'c<k>.<set>[.<text>…][*<count>]' — then each step's arguments (as many as its set says). Reply:
-- one reply per step, in order (0 for a step with nothing to say, read as an empty list). The
-- subject hash last changed (subject.lua), the loop strings the steps changed (check.lua) and the
-- failed keys' hash (failure.lua) are written after the last step.
-- steps(KEYS, ARGV) is the call (src/store/detectors/redis.ts).
local STEPS = { c = check_step, r = record_step, f = failure_step }

-- Heads parsed once and kept by their text ({ step, kind, first key - 1, set's place, steps, the
-- texts' places… }), at most HEADS_MAX, all forgotten when one more comes.
local HEADS_MAX = 1024
local heads, heads_count = {}, 0
local function head_of(text)
  local h = heads[text]
  if h then return h end
  local kind, k, set, rest = string.match(text, '^(%a)(%d+)%.(%d+)(.*)$')
  h = { STEPS[kind], kind, tonumber(k), tonumber(set), 1 }
  for sep, x in string.gmatch(rest, '([%.%*])(%d+)') do
    if sep == '*' then h[5] = tonumber(x) else h[#h + 1] = tonumber(x) end
  end
  if heads_count >= HEADS_MAX then heads, heads_count = {}, 0 end
  heads[text], heads_count = h, heads_count + 1
  return h
end

-- The steps from ARGV[i] on, each reply to replies[s]; a step that fails throws (run_steps'
-- caller answers for it and goes on with the next). One pcall for the run, not one a step (~600
-- instructions); `failing` says whether a step began (else its head or set could not be read).
-- A run's head and set are kept while its steps (`left` of them) go.
local replies, s, i, failing, failing_kind, run, run_set, left

local function run_steps(KEYS, ARGV, n)
  while left > 0 or i <= n do
    if left == 0 then
      local text = ARGV[i]
      local h = heads[text] or head_of(text)
      -- (The set of the head's place: kept in the head while its text stays the same.)
      local set_text = ARGV[h[4]]
      local set = h.set
      if h.set_text ~= set_text then
        set = set_of(h[2], set_text)
        h.set, h.set_text = set, set_text
      end
      run, run_set, left = h, set, h[5]
      i = i + 1
    end
    failing, failing_kind = run_set.nargs, run[2]
    left = left - 1
    -- (The step reads its arguments from ARGV[i].)
    replies[s + 1] = run[1](KEYS, run[3], run_set, ARGV, i - 1, run)
    failing = nil
    s = s + 1
    i = i + run_set.nargs
  end
end

local function steps(KEYS, ARGV)
  start_call()
  start_subjects()
  start_checks()
  start_failures()
  replies, s, failing, left = {}, 0, nil, 0
  i = number(ARGV[1]) + 2
  local n = #ARGV
  while left > 0 or i <= n do
    local ok, err = pcall(run_steps, KEYS, ARGV, n)
    if not ok then
      if not failing then error(err) end
      if failing_kind == 'f' then
        forget_failures()
      else
        -- (A check's fingerprint is ARGV[i]: one that failed before it observed keeps its place.)
        if failing_kind == 'c' and run_set.loop then loop_failed(KEYS[run[3] + 2], i) end
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
  write_loops(ARGV)
  flush_failures()
  return replies
end
