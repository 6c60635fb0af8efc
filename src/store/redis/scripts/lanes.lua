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

-- The tenant owning endpoint `ep` ('' for the admin's, or an endpoint no longer stored).
local function owner_of(prefix, ep)
  local tenant = owners[ep]
  if tenant == nil then
    tenant = ''
    local json = redis.call('HGET', prefix .. 'endpoints', ep)
    if json then
      local ok, e = pcall(cjson.decode, json)
      if ok and type(e) == 'table' and type(e.tenant_id) == 'string' then tenant = e.tenant_id end
    end
    owners[ep] = tenant
  end
  return tenant
end

-- The lane of endpoint `ep`'s deliveries.
local function lane_of(prefix, ep)
  return lane_key(prefix, owner_of(prefix, ep))
end
