-- Stores the new events of a batch of journal entries, creates their deliveries, and
-- acknowledges the entries, atomically: one call per normalizer batch, so the script's own
-- overhead is paid once.
--
-- KEYS[1] inbound stream   KEYS[2] events stream   KEYS[3] stats hash   KEYS[4] stats:types hash
-- KEYS[5] (unused: deliveries go to their endpoints' lanes, lanes.lua)   KEYS[6] journal lease
-- then 4 keys per event, entries in order: dedup key, type index, platform index, account index
-- ARGV[1] consumer group   ARGV[2] dedup TTL (s)   ARGV[3] MINID for trimming (ms)
-- ARGV[4] account index TTL (s)   ARGV[5] number of entries   ARGV[6] key prefix
-- ARGV[7] delivery status TTL (s)   ARGV[8] most events per deliveries entry
-- ARGV[9] the consumer holding the journal lease, or "" for a caller without one
-- ARGV[10] number of endpoint owners, then that many pairs: endpoint id, tenant id (the
--   routing table's owners of the batch's tenant endpoints, see lanes.lua)
-- then per entry: journal id, source, received_at (ms), envelope object, request id, "1" for
--   a test suite's sample (counted apart) or "", number of events,
--   followed by 13 values per event: type, platform, account id, occurred_at (ms or ""), data,
--   JSON-mode endpoint ids, raw-mode endpoint ids, tenant ids (each comma-separated), the
--   envelope member naming the user the event is about (or ""), the JSON-mode endpoints
--   ordering by conversation (comma-separated), the event's conversation, a WhatsApp status's
--   message id and rank (or "" and 0)
--
-- The deliveries streams do not copy events: one entry (`k` = `b`) names a span of the
-- events stream, `from` to `to`, whose events are to be delivered to those of their
-- endpoints (`eps` of the event) that the entry names (its `eps`: the endpoints of one owner,
-- in that owner's lane). The events of one call are contiguous in the events stream (a
-- script runs alone), so a span holds exactly the routed events written between its ends.
--
-- An endpoint ordering by conversation gets the event through its conversation's queue
-- (conversation.lua); a status of a message whose later status came first is marked `stale`
-- there instead (`{p}step:{message id}` holds the highest rank received, for the dedup TTL).
--
-- Raw delivery status and tenant index keys hold ids that only exist in here, so they are
-- built from the prefix (ARGV[6]) rather than passed as KEYS.
--
-- Index streams (type, platform, account, tenant) get one entry per index per batch, not one
-- per event: its id is the first of the batch's events for that index, its field `ids` lists
-- them all (comma-separated, oldest first). Meta batches alike events together, so this
-- saves most index writes; readers expand the entries (see `list_events`).
--
-- Returns one list per entry holding, per event, its new id or 0 for a duplicate. Should a
-- command fail midway, the entries not yet acknowledged are read again, and the dedup keys
-- already set make that repeat harmless.
-- A consumer that held the lease commits only while it still does: once another took over
-- (this one stalled past its lease), what it read is the new holder's to store, in order.
if ARGV[9] ~= '' and redis.call('GET', KEYS[6]) ~= ARGV[9] then
  return redis.error_reply('LEASE the journal lease passed to another instance')
end
local k, a = 7, 11
for _ = 1, tonumber(ARGV[10]) do
  learn_owner(ARGV[6], ARGV[a], ARGV[a + 1])
  a = a + 2
end
local prefix, status_ttl, span_max = ARGV[6], ARGV[7], tonumber(ARGV[8])
local new, dup, test_new, stale = 0, 0, 0, 0
local out = {}
-- Counted per type over the batch, written once per type at the end.
local by_type = {}
-- Index key → the batch's event ids for it, in order.
local indexes = grouped()
local expiring = {}

-- Per lane, the routed events not yet in a deliveries entry: first and last id, how many,
-- and the lane's endpoints among them.
local spans, span_lanes = {}, {}
local function close_span(lane)
  local s = spans[lane]
  if s then
    redis.call('XADD', lane, '*', 'k', 'b', 'from', s.from, 'to', s.to,
      'eps', table.concat(s.eps, ','))
    spans[lane] = nil
  end
end
local function add_to_span(lane, id, ep)
  local s = spans[lane]
  if not s then
    s = {from = id, n = 0, eps = {}, seen = {}}
    spans[lane] = s
    span_lanes[#span_lanes + 1] = lane
  end
  if s.to ~= id then s.to, s.n = id, s.n + 1 end
  if not s.seen[ep] then s.seen[ep], s.eps[#s.eps + 1] = true, ep end
end

-- Whether a status of rank `rank` of message `msg` comes after a later one; notes it if not.
local function is_stale(msg, rank)
  local key = prefix .. 'step:' .. msg
  if (tonumber(redis.call('GET', key)) or 0) >= rank then return true end
  redis.call('SET', key, rank, 'EX', ARGV[2])
  return false
end

local function order(id, oeps, conv, msg, rank)
  if rank > 0 and is_stale(msg, rank) then
    local ms = string.match(id, '^(%d+)')
    local status_key = prefix .. 'dstatus:e:' .. string.sub(ms, 1, -4)
    for ep in string.gmatch(oeps, '[^,]+') do
      redis.call('HSET', status_key, id .. '|' .. ep, 'stale:0')
    end
    redis.call('EXPIRE', status_key, status_ttl)
    stale = stale + 1
    return
  end
  for ep in string.gmatch(oeps, '[^,]+') do
    queue_in_conversation(prefix, ep, conv, id)
  end
end

local function pending(status_key, eps)
  for ep in string.gmatch(eps, '[^,]+') do
    redis.call('HSET', status_key, ep, 'pending:1')
  end
  redis.call('EXPIRE', status_key, status_ttl)
end

for e = 1, tonumber(ARGV[5]) do
  local jid, src, rcv, obj, rq = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local test = ARGV[a + 5] == '1'
  local n = tonumber(ARGV[a + 6])
  a = a + 7
  local ids = {}
  -- Raw endpoints of the entry by lane, each once.
  local raw_lanes, raw_order, raw_seen, raw_type, raw_account = {}, {}, {}, nil, nil
  for i = 1, n do
    local etype, platform, account = ARGV[a], ARGV[a + 1], ARGV[a + 2]
    local eps, reps, tenants = ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
    if redis.call('SET', KEYS[k], jid, 'NX', 'EX', ARGV[2]) then
      -- The event keeps the endpoints it was routed to: a delivery with no state recorded yet
      -- is pending, so nothing more is written per event until its first attempt.
      local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*',
        'type', etype, 'platform', platform, 'account', account,
        'occurred_at', ARGV[a + 3], 'source', src, 'received_at', rcv,
        'object', obj, 'journal_id', jid, 'request_id', rq, 'eps', eps, 'data', ARGV[a + 4],
        'who', ARGV[a + 8], 'oeps', ARGV[a + 9], 'conv', ARGV[a + 10])
      for j = 1, 3 do indexes.add(KEYS[k + j], id) end
      -- Type and platform indexes are few; an account's index goes when the account is idle.
      expiring[KEYS[k + 3]] = true
      if not test then by_type[etype] = (by_type[etype] or 0) + 1 end
      if eps ~= '' then
        local ordered, touched = {}, {}
        for ep in string.gmatch(ARGV[a + 9], '[^,]+') do ordered[ep] = true end
        for ep in string.gmatch(eps, '[^,]+') do
          if not ordered[ep] then
            local lane = lane_of(prefix, ep)
            add_to_span(lane, id, ep)
            touched[lane] = true
          end
        end
        for lane in pairs(touched) do
          if spans[lane].n >= span_max then close_span(lane) end
        end
      end
      if ARGV[a + 9] ~= '' then
        order(id, ARGV[a + 9], ARGV[a + 10], ARGV[a + 11], tonumber(ARGV[a + 12]))
      end
      if reps ~= '' then
        for ep in string.gmatch(reps, '[^,]+') do
          if not raw_seen[ep] then
            raw_seen[ep] = true
            local lane = lane_of(prefix, ep)
            if not raw_lanes[lane] then
              raw_lanes[lane] = {}
              raw_order[#raw_order + 1] = lane
            end
            table.insert(raw_lanes[lane], ep)
            raw_type, raw_account = raw_type or etype, raw_account or account
          end
        end
      end
      if tenants ~= '' then
        for t in string.gmatch(tenants, '[^,]+') do indexes.add(prefix .. 'idx:tenant:' .. t, id) end
      end
      if test then test_new = test_new + 1 else new = new + 1 end
      ids[i] = id
    else
      if not test then dup = dup + 1 end
      ids[i] = 0
    end
    k = k + 4
    a = a + 13
  end
  -- Raw mode forwards Meta's request itself, once per endpoint, when it brought anything new.
  for _, lane in ipairs(raw_order) do
    local eps = table.concat(raw_lanes[lane], ',')
    redis.call('XADD', lane, '*', 'k', 'r', 'ev', jid, 'eps', eps, 'att', '1',
      'type', raw_type, 'account', raw_account, 'source', src, 'received_at', rcv,
      'request_id', rq)
    pending(prefix .. 'dstatus:r:' .. jid, eps)
  end
  redis.call('XACK', KEYS[1], ARGV[1], jid)
  out[e] = ids
end
for _, lane in ipairs(span_lanes) do close_span(lane) end
-- An index is a convenience: failing to write one must not lose the events.
for _, key in ipairs(indexes.keys) do
  local ids = indexes.lists[key]
  pcall(redis.call, 'XADD', key, 'MINID', '~', ARGV[3], ids[1], 'ids', table.concat(ids, ','))
end
for key in pairs(expiring) do redis.call('EXPIRE', key, ARGV[4]) end
for etype, n in pairs(by_type) do redis.call('HINCRBY', KEYS[4], etype, n) end
if new > 0 then redis.call('HINCRBY', KEYS[3], 'events', new) end
if dup > 0 then redis.call('HINCRBY', KEYS[3], 'duplicates', dup) end
if test_new > 0 then redis.call('HINCRBY', KEYS[3], 'test_events', test_new) end
if stale > 0 then redis.call('HINCRBY', KEYS[3], 'stale_statuses', stale) end
return out
