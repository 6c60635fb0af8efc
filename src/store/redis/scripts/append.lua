-- Adds entries to a stream and counts them, atomically. A script rather than MULTI/EXEC: on a
-- cluster, a script sent to a node that no longer serves its slot (after a failover) is
-- redirected like any command, where a transaction is only aborted.
--
-- KEYS[1] the stream   KEYS[2] the stats hash
-- ARGV[1] trimming: "MINID" or "MAXLEN"   ARGV[2] its bound (exact for MAXLEN)
-- ARGV[3] the stats field counting them   ARGV[4] how much to add to it
-- ARGV[5] number of fields per entry, then the entries' field/value pairs in turn
-- Returns the new entries' ids.
local approx = '~'
if ARGV[1] == 'MAXLEN' then approx = '=' end
local width = tonumber(ARGV[5]) * 2
local ids = {}
for i = 6, #ARGV, width do
  ids[#ids + 1] = redis.call('XADD', KEYS[1], ARGV[1], approx, ARGV[2], '*',
    unpack(ARGV, i, i + width - 1))
end
if tonumber(ARGV[4]) ~= 0 then redis.call('HINCRBY', KEYS[2], ARGV[3], ARGV[4]) end
return ids
