-- Notes how a round of deliveries went for each endpoint: its last success and failure, since
-- when it fails, and disables it once it has failed for `delivery.disable_after` or answered
-- 410 Gone. Run on the catalogue's slot after the round's outcomes were committed in their
-- partition (commit_attempts.lua); written once per endpoint per round, not per delivery.
--
-- KEYS[1] endpoints version (bumped when an endpoint is disabled, so routers reload)
-- ARGV[1] now (ms)   ARGV[2] disable after (ms)   ARGV[3] catalogue key prefix
-- then pairs: endpoint id, what happened in the round: any of s (a delivery succeeded),
--   f (an attempt failed), g (it answered 410 Gone)
local now, disable_after, prefix = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]

local function disable(h, reason)
  if redis.call('HEXISTS', h, 'disabled_reason') == 0 then
    redis.call('HSET', h, 'disabled_reason', reason, 'disabled_at', now)
    redis.call('INCR', KEYS[1])
  end
end

for i = 4, #ARGV - 1, 2 do
  local h, what = prefix .. 'ephealth:' .. ARGV[i], ARGV[i + 1]
  local ok, failed = string.find(what, 's', 1, true), string.find(what, 'f', 1, true)
  if string.find(what, 'g', 1, true) then disable(h, 'gone') end
  if failed and ok then
    -- It also succeeded in this round: not failing, the failure is only noted.
    redis.call('HSET', h, 'last_failure', now)
  elseif failed then
    redis.call('HSET', h, 'last_failure', now)
    redis.call('HSETNX', h, 'failing_since', now)
    if now - tonumber(redis.call('HGET', h, 'failing_since')) >= disable_after then
      disable(h, 'failing')
    end
  end
  if ok then
    redis.call('HSET', h, 'last_success', now)
    redis.call('HDEL', h, 'failing_since')
  end
end
return 1
