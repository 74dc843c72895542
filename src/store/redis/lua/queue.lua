-- Fair queueing (src/core/fair-queue.ts, the same logic over Redis keys; docs/queueing.md).
-- Appended after apply.lua: gate() runs apply() for an op in the same atomic step as the queue's
-- verdict, so that a request takes the capacity only when nobody waits or it is the queue's head.
--
-- Keys of one queue (one hash tag, beside the capacity's own keys):
--   Q[1] tickets, a sorted set: member "<seq, 12 digits>:<waiter id>", score the finish tag
--   Q[2] leases, a sorted set: the same members, score the lease expiry (ms, Redis time)
--   Q[3] a hash: v virtual time, s arrival counter, f:<flow> last finish tag, n:<flow> tickets
--        held, t:<ticket> "<flow>\n<start tag>", a:<ticket> its arrival (ms, Redis time)
--   Q[4] a marker string, there while the queue holds tickets: on a Redis Cluster a guarded op
--        reads it in apply's MGET (a zset cannot be read there), so a first try costs no command
--        of its own (kept on one Redis too, for instances of an earlier version)
--   Q[5] the busy string (lua/busy.lua) on one Redis, where a guarded op reads whether its queue
--        holds tickets; on a cluster Q[4] again, which says there is none
-- Every change sets the four keys to live until the last lease expires (and the queue's entry in
-- the busy string to end then); a queue with no ticket is deleted (it starts afresh).
--
-- ARGV[1] is 'gate' (what tells this entry from apply's), ARGV[2] the action:
--   try <ticket or ''> <leaseMs> <apply's ARGV...>   KEYS: Q[1..5], then apply's KEYS
--     -> { 'ran', <apply's reply...> } | { 'wait', size } | { 'gone' }
--   batch <n>, then per try: <nKeys> <nArgs> <ticket> <leaseMs> <apply's ARGV...>; KEYS: per try,
--     its Q[1..5] and apply's KEYS -> one reply of try per try, in order ({ 'error', message }
--     for a try that failed)
--   enqueue <waiter> <flow> <weight> <leaseMs> <maxPerFlow> <maxTotal>
--     -> { 1, ticket, size, finish } | { 0, 'queue-full' | 'flow-full', size }
--   leave <ticket> -> { size }
--   length -> { size }
--   inspect -> { size, ms the oldest ticket has waited (-1 when none) }   (the admin API's view)

local function q_expire(Q)
  local last = call('ZRANGE', Q[2], -1, -1, 'WITHSCORES')
  if #last == 0 then
    call('DEL', Q[1], Q[2], Q[3], Q[4])
    if Q[5] ~= Q[4] then busy_set(Q[5], Q[1], nil) end
    return
  end
  local ends = tonumber(last[2])
  local ttl = px(ends - now)
  call('PEXPIRE', Q[1], ttl)
  call('PEXPIRE', Q[2], ttl)
  call('PEXPIRE', Q[3], ttl)
  call('SET', Q[4], '1', 'PX', ttl)
  if Q[5] ~= Q[4] then busy_set(Q[5], Q[1], ends) end
end

local function q_number(Q, field)
  return tonumber(call('HGET', Q[3], field) or '0')
end

-- Removes a ticket (served, expired or left); forgets the flow once it holds none and is not
-- ahead of the virtual time.
local function q_drop(Q, id)
  local record = call('HGET', Q[3], 't:' .. id)
  call('ZREM', Q[1], id)
  call('ZREM', Q[2], id)
  if not record then return end
  call('HDEL', Q[3], 't:' .. id, 'a:' .. id)
  local flow = match(record, '^(.-)\n')
  if call('HINCRBY', Q[3], 'n:' .. flow, -1) <= 0 then
    call('HDEL', Q[3], 'n:' .. flow)
    if q_number(Q, 'f:' .. flow) <= q_number(Q, 'v') then call('HDEL', Q[3], 'f:' .. flow) end
  end
end

local function q_purge(Q)
  local expired = call('ZRANGEBYSCORE', Q[2], '-inf', format('%.17g', now))
  for j = 1, #expired do q_drop(Q, expired[j]) end
  if #expired > 0 then q_expire(Q) end
end

local function q_serve(Q, id)
  local record = call('HGET', Q[3], 't:' .. id)
  if record then
    local start = tonumber(match(record, '\n(.*)$'))
    if start > q_number(Q, 'v') then call('HSET', Q[3], 'v', format('%.17g', start)) end
  end
  q_drop(Q, id)
  q_expire(Q)
end

local function q_enqueue(Q, ARGV)
  local waiter, flow, weight = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local lease, max_flow, max_total = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local size = call('ZCARD', Q[1])
  if size >= max_total then return { 0, 'queue-full', size } end
  if q_number(Q, 'n:' .. flow) >= max_flow then return { 0, 'flow-full', size } end
  local seq = call('HINCRBY', Q[3], 's', 1)
  local start = math.max(q_number(Q, 'v'), q_number(Q, 'f:' .. flow))
  local finish = start + 1 / weight
  local id = format('%012d', seq) .. ':' .. waiter
  call('ZADD', Q[1], format('%.17g', finish), id)
  call('ZADD', Q[2], format('%.17g', now + lease), id)
  call('HSET', Q[3], 't:' .. id, flow .. '\n' .. format('%.17g', start), 'f:' .. flow, format('%.17g', finish),
    'a:' .. id, format('%.17g', now))
  call('HINCRBY', Q[3], 'n:' .. flow, 1)
  q_expire(Q)
  return { 1, id, size + 1, format('%.17g', finish) }
end

-- May this request try now? A ticket holder when its ticket is the head (its lease renewed);
-- a request without one when nobody waits.
local function q_turn(Q, id, lease)
  if id ~= '' then
    if not call('ZSCORE', Q[1], id) then return 'gone' end
    call('ZADD', Q[2], format('%.17g', now + lease), id)
    q_expire(Q)
    if call('ZRANGE', Q[1], 0, 0)[1] ~= id then return 'wait' end
    return 'try'
  end
  if call('EXISTS', Q[1]) == 1 then return 'wait' end
  return 'try'
end

local function q_try(Q, id, lease, keys, args)
  q_purge(Q)
  local turn = q_turn(Q, id, lease)
  if turn == 'gone' then return { 'gone' } end
  if turn == 'wait' then return { 'wait', call('ZCARD', Q[1]) } end
  local reply = apply(keys, args)
  if id ~= '' then
    -- The op's status is the second double of apply's reply (after the time): 1 admitted.
    local _, status = unpack_state('<dd', reply[1])
    if status > 0 and status % 2 == 1 then q_serve(Q, id) end
  end
  local out = { 'ran' }
  for j = 1, #reply do out[j + 1] = reply[j] end
  return out
end

local function clock()
  local t = call('TIME')
  return (tonumber(t[1]) * 1000000 + tonumber(t[2])) / 1000
end

local function gate(KEYS, ARGV)
  local action = ARGV[2]
  if action == 'batch' then
    local replies, key_at, arg_at = {}, 1, 4
    for k = 1, tonumber(ARGV[3]) do
      local nkeys, nargs = tonumber(ARGV[arg_at]), tonumber(ARGV[arg_at + 1])
      local id, lease = ARGV[arg_at + 2], tonumber(ARGV[arg_at + 3])
      local Q = { KEYS[key_at], KEYS[key_at + 1], KEYS[key_at + 2], KEYS[key_at + 3], KEYS[key_at + 4] }
      local keys = { unpack(KEYS, key_at + 5, key_at + nkeys - 1) }
      local args = { unpack(ARGV, arg_at + 4, arg_at + 3 + nargs) }
      now = clock()
      local ok, reply = pcall(q_try, Q, id, lease, keys, args)
      if not ok then
        if type(reply) == 'table' then reply = reply.err or 'error' end
        reply = { 'error', tostring(reply) }
      end
      replies[k] = reply
      key_at, arg_at = key_at + nkeys, arg_at + 4 + nargs
    end
    return replies
  end
  now = clock()
  local Q = { KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5] }
  if action == 'try' then
    return q_try(Q, ARGV[3], tonumber(ARGV[4]), { unpack(KEYS, 6) }, { unpack(ARGV, 5) })
  end
  q_purge(Q)
  if action == 'enqueue' then return q_enqueue(Q, ARGV) end
  if action == 'leave' then
    q_drop(Q, ARGV[3])
    q_expire(Q)
    return { call('ZCARD', Q[1]) }
  end
  if action == 'length' then return { call('ZCARD', Q[1]) } end
  if action == 'inspect' then
    -- Ticket ids start with their zero-padded arrival number: the smallest is the oldest.
    local ids = call('ZRANGE', Q[1], 0, -1)
    local oldest = nil
    for j = 1, #ids do
      if oldest == nil or ids[j] < oldest then oldest = ids[j] end
    end
    if oldest == nil then return { 0, -1 } end
    local arrived = tonumber(call('HGET', Q[3], 'a:' .. oldest) or now)
    return { #ids, math.floor(now - arrived) }
  end
  error('unknown queue action ' .. tostring(action))
end
