-- Stores the new events of a batch of journal entries and acknowledges the entries,
-- atomically: one call per normalizer batch, so the script's own overhead is paid once.
--
-- KEYS[1] inbound stream   KEYS[2] events stream   KEYS[3] stats hash   KEYS[4] stats:types hash
-- then 4 keys per event, entries in order: dedup key, type index, platform index, account index
-- ARGV[1] consumer group   ARGV[2] dedup TTL (s)   ARGV[3] MINID for trimming (ms)
-- ARGV[4] account index TTL (s)   ARGV[5] number of entries
-- then per entry: journal id, source, received_at (ms), envelope object, number of events,
--   followed by 5 values per event: type, platform, account id, occurred_at (ms or ""), data
--
-- Returns one list per entry holding, per event, its new id or 0 for a duplicate. Should a
-- command fail midway, the entries not yet acknowledged are read again, and the dedup keys
-- already set make that repeat harmless.
local k, a = 5, 6
local new, dup = 0, 0
local out = {}
for e = 1, tonumber(ARGV[5]) do
  local jid, src, rcv, obj = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local n = tonumber(ARGV[a + 4])
  a = a + 5
  local ids = {}
  for i = 1, n do
    local etype = ARGV[a]
    if redis.call('SET', KEYS[k], jid, 'NX', 'EX', ARGV[2]) then
      local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*',
        'type', etype, 'platform', ARGV[a + 1], 'account', ARGV[a + 2],
        'occurred_at', ARGV[a + 3], 'source', src, 'received_at', rcv,
        'object', obj, 'journal_id', jid, 'data', ARGV[a + 4])
      -- An index is a convenience: failing to write one must not lose the event.
      for j = 1, 3 do
        pcall(redis.call, 'XADD', KEYS[k + j], 'MINID', '~', ARGV[3], id, 'e', '')
      end
      -- Type and platform indexes are few; an account's index goes when the account is idle.
      redis.call('EXPIRE', KEYS[k + 3], ARGV[4])
      redis.call('HINCRBY', KEYS[4], etype, 1)
      new = new + 1
      ids[i] = id
    else
      dup = dup + 1
      ids[i] = 0
    end
    k = k + 4
    a = a + 5
  end
  redis.call('XACK', KEYS[1], ARGV[1], jid)
  out[e] = ids
end
if new > 0 then redis.call('HINCRBY', KEYS[3], 'events', new) end
if dup > 0 then redis.call('HINCRBY', KEYS[3], 'duplicates', dup) end
return out
