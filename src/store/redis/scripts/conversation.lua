-- Prepended to the scripts that queue or resolve deliveries to endpoints ordering by
-- conversation. Per endpoint and conversation, `{p}conv:{ep}:{conversation}` lists the
-- events waiting, oldest first; only the first (the head) is queued or retried, and
-- `{p}convheads:{ep}` maps each head to its conversation.

-- Queues `id` for its first attempt at `ep` as the head of `conv`, in `ep`'s lane.
local function queue_head(prefix, ep, conv, id)
  redis.call('XADD', lane_of(prefix, ep), '*', 'k', 'e', 'ev', id, 'eps', ep, 'att', '1')
  redis.call('HSET', prefix .. 'convheads:' .. ep, id, conv)
end

-- Puts the new event `id` behind `conv` at `ep`; queues it at once when nothing waits.
local function queue_in_conversation(prefix, ep, conv, id)
  if redis.call('RPUSH', prefix .. 'conv:' .. ep .. ':' .. conv, id) == 1 then
    queue_head(prefix, ep, conv, id)
  end
end

-- After the delivery of `subj` to `ep` was resolved for good: when it is the head of `conv`,
-- takes it off and queues the next event still stored. Returns how many events waited
-- behind it, or nil when it was not the head.
local function release(prefix, ep, conv, subj)
  local key = prefix .. 'conv:' .. ep .. ':' .. conv
  if redis.call('LINDEX', key, 0) ~= subj then return nil end
  redis.call('LPOP', key)
  redis.call('HDEL', prefix .. 'convheads:' .. ep, subj)
  local events = prefix .. 'events'
  local waiting = redis.call('LLEN', key)
  while true do
    local nxt = redis.call('LINDEX', key, 0)
    if not nxt then return waiting end
    if #redis.call('XRANGE', events, nxt, nxt) > 0 then
      queue_head(prefix, ep, conv, nxt)
      return waiting
    end
    -- Retention already removed it: it cannot be delivered.
    redis.call('LPOP', key)
    waiting = waiting - 1
  end
end

-- A delivery to `ep` dropped because its event is gone: when it was a head, the next goes.
local function release_gone(prefix, ep, subj)
  local conv = redis.call('HGET', prefix .. 'convheads:' .. ep, subj)
  if conv then release(prefix, ep, conv, subj) end
end
