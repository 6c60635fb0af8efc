-- Takes, keeps or gives up the journal lease: the right to split the journal, which one
-- instance holds at a time so that events are stored in the order they were received.
--
-- KEYS[1] lease key   ARGV[1] consumer   ARGV[2] "hold" or "release"   ARGV[3] lease (ms)
-- hold → 1 kept, 2 taken (it was free), 0 held by another; release → 1 released, 0 not held
local holder = redis.call('GET', KEYS[1])
if ARGV[2] == 'release' then
  if holder == ARGV[1] then
    redis.call('DEL', KEYS[1])
    return 1
  end
  return 0
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 2
