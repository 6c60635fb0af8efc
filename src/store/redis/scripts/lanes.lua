-- Prepended to the scripts that queue deliveries. Deliveries wait in one stream per owner of
-- their endpoints (a lane): `{p}deliveries` for the admin's endpoints, `{p}deliveries:t:{t}`
-- for tenant t's, listed in the set `{p}delivery_lanes`. Readers take a share of every lane
-- in turn, so one tenant's backlog never stands in front of another tenant's deliveries.
-- The consumer group is `delivery` (keys.rs, DELIVERY_GROUP).

local lanes_known, owners = {}, {}

-- The stream of tenant `tenant`'s deliveries, made ready for the delivery group on first use.
local function lane_key(prefix, tenant)
  if tenant == '' then return prefix .. 'deliveries' end
  local key = prefix .. 'deliveries:t:' .. tenant
  if not lanes_known[tenant] then
    lanes_known[tenant] = true
    if redis.call('SADD', prefix .. 'delivery_lanes', tenant) == 1 then
      redis.pcall('XGROUP', 'CREATE', key, 'delivery', '0', 'MKSTREAM')
    end
  end
  return key
end

-- Notes that `tenant` owns endpoint `ep`, as the caller's routing table says. The catalogue's
-- endpoints may be on another slot of a cluster: the partition keeps what it learns in
-- `{p}owners` (an endpoint never changes owner), for the scripts that have only an endpoint id.
local function learn_owner(prefix, ep, tenant)
  if owners[ep] == tenant then return end
  owners[ep] = tenant
  if tenant ~= '' then redis.call('HSET', prefix .. 'owners', ep, tenant) end
end

-- The tenant owning endpoint `ep` ('' for the admin's, or an endpoint never learnt).
local function owner_of(prefix, ep)
  local tenant = owners[ep]
  if tenant == nil then
    tenant = redis.call('HGET', prefix .. 'owners', ep) or ''
    owners[ep] = tenant
  end
  return tenant
end

-- The lane of endpoint `ep`'s deliveries.
local function lane_of(prefix, ep)
  return lane_key(prefix, owner_of(prefix, ep))
end
