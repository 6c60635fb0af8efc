-- Records what became of a batch of deliveries and acknowledges the finished entries,
-- atomically: attempt logs, delivery states, retries, dead letters and statistics either all
-- land with the acknowledgements or none do (and the entries are attempted again, under the
-- same webhook-id). Endpoint health is the catalogue's, on another slot of a cluster: the
-- caller records it next (health.lua).
--
-- Writes are grouped: one attempt-log entry per endpoint (a JSON array of its attempts; an
-- attempt's id is `{entry id}.{position}`), one HSET per state hash, one HINCRBY per counter.
--
-- KEYS[1] (unused; deliveries are acknowledged in their lanes, lanes.lua)   KEYS[2] retry
-- sorted set   KEYS[3] dead stream
-- ARGV[1] consumer group   ARGV[2] now (ms)   ARGV[3] key prefix   ARGV[4] state/stats TTL (s)
-- ARGV[5] MINID of attempt logs   ARGV[6] (unused)   ARGV[7] MINID of the dead stream
-- ARGV[8] number of resolutions   ARGV[9] number of lanes with acks   ARGV[10] number of stat increments
-- ARGV[11] number of attempt-log groups
-- then 3 values per attempt-log group: endpoint, number of attempts, JSON array of them
-- then 15 values per resolution: kind (e|r), subject, endpoint, tenant, event type, attempt,
--   next (delivered|retry|defer|dead|gone|drop), due (ms), reason, attempt-log group (0: not
--   attempted), position in it, received_at (ms), state hash key, state field, the event's
--   conversation when the delivery may be its head at an ordered endpoint (else "")
--
-- A final outcome (delivered, dead, gone, drop) of a conversation's head lets the next event
-- of the conversation go (conversation.lua); a dead head's reason says how many waited.
-- then, per lane with entries to acknowledge (ARGV[9] lanes): its stream, how many, the ids
-- then 3 values per stat increment: key, field, amount
local prefix, ttl, now = ARGV[3], ARGV[4], tonumber(ARGV[2])

local a = 12
local log_ids = {}
for g = 1, tonumber(ARGV[11]) do
  log_ids[g] = redis.call('XADD', prefix .. 'attempts:' .. ARGV[a], 'MINID', '~', ARGV[5], '*',
    'n', ARGV[a + 1], 'j', ARGV[a + 2])
  a = a + 3
end

-- State hash key → its field/value pairs.
local states = grouped()

for _ = 1, tonumber(ARGV[8]) do
  local kind, subj, ep, tenant = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local etype, att, nxt, due = ARGV[a + 4], tonumber(ARGV[a + 5]), ARGV[a + 6], ARGV[a + 7]
  local reason, group, rcv = ARGV[a + 8], tonumber(ARGV[a + 9]), ARGV[a + 11]
  local state_key, state_field, conv = ARGV[a + 12], ARGV[a + 13], ARGV[a + 14]
  learn_owner(prefix, ep, tenant)
  local log_id = ''
  if group > 0 then log_id = log_ids[group] .. '.' .. ARGV[a + 10] end
  a = a + 15
  local state = nil
  local waiting = nil
  if conv ~= '' and kind == 'e' and nxt ~= 'retry' and nxt ~= 'defer' then
    waiting = release(prefix, ep, conv, subj)
  end
  if nxt == 'delivered' then
    state = 'delivered:' .. att .. ':' .. log_id
  elseif nxt == 'retry' then
    redis.call('ZADD', KEYS[2], due, table.concat({kind, subj, ep, att + 1, etype}, '|'))
    state = 'failed:' .. att .. ':' .. log_id
  elseif nxt == 'defer' then
    -- Not attempted (the endpoint's queue was full): same attempt number, later.
    redis.call('ZADD', KEYS[2], due, table.concat({kind, subj, ep, att, etype}, '|'))
  elseif nxt == 'dead' or nxt == 'gone' then
    if waiting and waiting > 0 then
      reason = reason .. '; ' .. waiting .. ' later events of its conversation released after it'
    end
    local dead_id = redis.call('XADD', KEYS[3], 'MINID', '~', ARGV[7], '*', 'k', kind,
      'ev', subj, 'ep', ep, 'tenant', tenant, 'type', etype, 'att', att, 'reason', reason,
      'at', now, 'received_at', rcv)
    state = 'dead:' .. att .. ':' .. log_id .. ':' .. dead_id
  elseif nxt == 'drop' then
    redis.call('HDEL', state_key, state_field)
  end
  if state then states.add(state_key, state_field, state) end
end
for _, key in ipairs(states.keys) do
  redis.call('HSET', key, unpack(states.lists[key]))
  redis.call('EXPIRE', key, ttl)
end

for _ = 1, tonumber(ARGV[9]) do
  local lane, n = ARGV[a], tonumber(ARGV[a + 1])
  redis.call('XACK', lane, ARGV[1], unpack(ARGV, a + 2, a + 1 + n))
  a = a + 2 + n
end

-- Increments arrive grouped by key: each key's expiry is set once, after its last one.
for i = 1, tonumber(ARGV[10]) do
  redis.call('HINCRBY', ARGV[a], ARGV[a + 1], ARGV[a + 2])
  if i == tonumber(ARGV[10]) or ARGV[a + 3] ~= ARGV[a] then
    redis.call('EXPIRE', ARGV[a], ttl)
  end
  a = a + 3
end
return 1
