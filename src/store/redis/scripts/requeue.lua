-- Puts deliveries back on the deliveries stream, atomically with taking them from where they
-- waited, so several hookd instances can run it at once and each delivery moves once.
--
-- KEYS[1] (unused: deliveries go to their endpoint's lane, lanes.lua)   KEYS[2] retry sorted set   KEYS[3] dead stream   KEYS[4] events
-- ARGV[1] mode   ARGV[2] key prefix   ARGV[3] state TTL (s)
--   due:  ARGV[4] now (ms), ARGV[5] how many at most   → {moved, dropped}
--   dead: ARGV[4…] dead entry ids                      → moved
--   one:  ARGV[4] kind, ARGV[5] subject, ARGV[6] endpoint, ARGV[7] event type, ARGV[8]
--         the audit record; KEYS[5], KEYS[6] the audit streams (see audit.lua)  → 1 or 0
--   gone: ARGV[4…] endpoint and event id pairs of deliveries dropped because their event
--         is gone                                                          → 0
-- A delivery whose event retention already trimmed cannot be rebuilt and is dropped; when it
-- was a conversation's head, the next event of the conversation goes (conversation.lua).
local prefix, ttl = ARGV[2], ARGV[3]

-- Where a delivery's state is kept (hash key, field), as `Keys::delivery_state_slot` says:
-- an event's states share a hash per second of the event id's time.
local function state_slot(kind, subj, ep)
  if kind == 'e' then
    local ms = string.match(subj, '^(%d+)') or ''
    return prefix .. 'dstatus:e:' .. string.sub(ms, 1, -4), subj .. '|' .. ep
  end
  return prefix .. 'dstatus:' .. kind .. ':' .. subj, ep
end

local function enqueue(kind, subj, ep, att, etype, state)
  if kind == 'e' then
    -- The entry names the event; the reader takes its data from the events stream.
    if #redis.call('XRANGE', KEYS[4], subj, subj) == 0 then return false end
    redis.call('XADD', lane_of(prefix, ep), '*', 'k', 'e', 'ev', subj, 'eps', ep, 'att', att)
  else
    redis.call('XADD', lane_of(prefix, ep), '*', 'k', 'r', 'ev', subj, 'eps', ep, 'att', att,
      'type', etype)
  end
  local key, field = state_slot(kind, subj, ep)
  redis.call('HSET', key, field, state .. ':' .. att)
  redis.call('EXPIRE', key, ttl)
  return true
end

local function split(member)
  local parts = {}
  for p in string.gmatch(member, '[^|]+') do parts[#parts + 1] = p end
  return parts
end

local mode = ARGV[1]
if mode == 'due' then
  local members = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[4], 'BYSCORE', 'LIMIT', 0, ARGV[5])
  local moved, dropped = 0, 0
  for _, m in ipairs(members) do
    local p = split(m)
    if enqueue(p[1], p[2], p[3], p[4], p[5] or '', 'delivering') then
      moved = moved + 1
    else
      dropped = dropped + 1
      if p[1] == 'e' then release_gone(prefix, p[3], p[2]) end
    end
    redis.call('ZREM', KEYS[2], m)
  end
  return {moved, dropped}
elseif mode == 'dead' then
  local moved = 0
  for i = 4, #ARGV do
    local found = redis.call('XRANGE', KEYS[3], ARGV[i], ARGV[i])
    if #found == 1 then
      local f, d = found[1][2], {}
      for j = 1, #f, 2 do d[f[j]] = f[j + 1] end
      if d.tenant then learn_owner(prefix, d.ep, d.tenant) end
      if enqueue(d.k, d.ev, d.ep, '1', d.type or '', 'pending') then moved = moved + 1 end
      redis.call('XDEL', KEYS[3], ARGV[i])
    end
  end
  return moved
elseif mode == 'one' then
  local kind, subj, ep, etype = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local current = redis.call('HGET', state_slot(kind, subj, ep))
  if not current then return 0 end
  if kind == 'e' and #redis.call('XRANGE', KEYS[4], subj, subj) == 0 then return 0 end
  -- Recorded before anything changes (see audit.lua): nothing below is left unrecorded.
  audit(KEYS[5], KEYS[6], ARGV[8])
  local state, att = string.match(current, '^([^:]+):(%d+)')
  att = tonumber(att) or 1
  local next_att = 1
  if state == 'failed' then
    -- Take it off the schedule: this attempt replaces the one that was waiting.
    redis.call('ZREM', KEYS[2], table.concat({kind, subj, ep, att + 1, etype}, '|'))
    next_att = att + 1
  elseif state == 'dead' then
    local dead_id = string.match(current, '^dead:[^:]*:[^:]*:(.+)$')
    if dead_id then redis.call('XDEL', KEYS[3], dead_id) end
  end
  enqueue(kind, subj, ep, tostring(next_att), etype, 'pending')
  return 1
elseif mode == 'gone' then
  for i = 4, #ARGV - 1, 2 do release_gone(prefix, ARGV[i], ARGV[i + 1]) end
  return 0
end
return redis.error_reply('unknown mode ' .. tostring(mode))
