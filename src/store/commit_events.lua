-- Stores the new events of one journal entry and acknowledges the entry, atomically.
--
-- KEYS[1] inbound stream   KEYS[2] events stream   KEYS[3] stats hash   KEYS[4] stats:types hash
-- then 4 keys per event: dedup key, type index, platform index, account index
-- ARGV[1] consumer group   ARGV[2] journal entry id   ARGV[3] dedup TTL (s)
-- ARGV[4] MINID for trimming (ms)   ARGV[5] index TTL (s)   ARGV[6] number of events
-- ARGV[7] source   ARGV[8] received_at (ms)   ARGV[9] envelope object
-- then 5 values per event: type, platform, account id, occurred_at (ms or ""), data
--
-- Returns one item per event: its new id, or 0 when it was a duplicate. The XACK comes last: should anything
-- before it fail, the entry stays pending and is processed again, and the dedup keys already
-- set make that repeat harmless.
local n = tonumber(ARGV[6])
local new, dup = 0, 0
local out = {}
for i = 0, n - 1 do
  local k = 5 + i * 4
  local a = 10 + i * 5
  local etype = ARGV[a]
  if redis.call('SET', KEYS[k], ARGV[2], 'NX', 'EX', ARGV[3]) then
    local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[4], '*',
      'type', etype, 'platform', ARGV[a + 1], 'account', ARGV[a + 2],
      'occurred_at', ARGV[a + 3], 'source', ARGV[7], 'received_at', ARGV[8],
      'object', ARGV[9], 'journal_id', ARGV[2], 'data', ARGV[a + 4])
    -- An index is a convenience: failing to write one must not lose the event.
    for j = 1, 3 do
      pcall(redis.call, 'XADD', KEYS[k + j], 'MINID', '~', ARGV[4], id, 'e', '')
      redis.call('EXPIRE', KEYS[k + j], ARGV[5])
    end
    redis.call('HINCRBY', KEYS[4], etype, 1)
    new = new + 1
    out[i + 1] = id
  else
    dup = dup + 1
    out[i + 1] = 0
  end
end
if new > 0 then redis.call('HINCRBY', KEYS[3], 'events', new) end
if dup > 0 then redis.call('HINCRBY', KEYS[3], 'duplicates', dup) end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return out
