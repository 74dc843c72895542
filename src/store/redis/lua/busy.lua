-- The queues that hold tickets (lua/queue.lua), listed in one string per Redis, so that apply()
-- learns whether anyone waits on a guarded op's capacity from one key read per batch instead of
-- one marker key per op (docs/queueing.md). Not on a Redis Cluster, where one key cannot serve
-- every slot: there a guarded op still names its queue's marker.
-- Entries: "\n<queue key>\n<ms, Redis time, until which it counts as holding tickets>". Past BUSY_MAX
-- queues at once the list gives way to one entry "*": every guarded op then counts as waited on
-- (it goes through its queue, which lets it run when its own holds nobody) until the last of
-- those leases ends. The string lives until its last entry ends.
local BUSY_MAX = 256

-- An entry is written to end this much after its queue's last lease: a queue's head renews its
-- lease at every try, and the string is then rewritten about once a second per queue, not at
-- every try. (A queue that empties removes its entry at once; one whose instance died keeps
-- newcomers on the slower path through it for up to this much longer.)
local BUSY_SLACK_MS = 1000

-- The end (ms) of the entry `name` in the busy string `s`, or nil.
local function busy_end(s, name)
  local _, e = string.find(s, '\n' .. name .. '\n', 1, true)
  return e and tonumber(match(s, '^%d+', e + 1))
end

-- Whether the queue of the op whose state key is `state_key` ("<base>#<layout>"; its queue is
-- "<base>!queue") holds tickets, by the busy string `busy`, at `now`.
local function busy_holds(busy, state_key)
  local star = busy_end(busy, '*')
  if star and star > now then return true end
  local base = match(state_key, '^(.*)#')
  if not base then return false end
  local ends = busy_end(busy, base .. '!queue')
  return ends ~= nil and ends > now
end

-- Sets the entry of `queue` in the busy string under `key` to end no earlier than `ends` (ms),
-- or removes it (nil); drops entries that ended.
local function busy_set(key, queue, ends)
  local s = call('GET', key) or ''
  if ends then
    local listed = busy_end(s, '*') or busy_end(s, queue)
    if listed and listed >= ends then return end
    ends = ends + BUSY_SLACK_MS
  elseif not busy_end(s, queue) then
    return
  end
  local out, n, latest, star = {}, 0, 0, nil
  for name, t in string.gmatch(s, '\n([^\n]*)\n(%d+)') do
    local until_ms = tonumber(t)
    if until_ms > now and name ~= queue then
      if name == '*' then
        star = until_ms
      else
        n = n + 1
        out[n] = '\n' .. name .. '\n' .. t
      end
      if until_ms > latest then latest = until_ms end
    end
  end
  if ends then
    ends = ceil(ends)
    if ends > latest then latest = ends end
    if star or n >= BUSY_MAX then
      star = latest
    else
      n = n + 1
      out[n] = '\n' .. queue .. '\n' .. format('%d', ends)
    end
  end
  if star then
    call('SET', key, '\n*\n' .. format('%d', star), 'PX', px(star - now))
  elseif n == 0 then
    call('DEL', key)
  else
    call('SET', key, table.concat(out), 'PX', px(latest - now))
  end
end
