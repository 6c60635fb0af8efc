-- The audit record of a change, written by the script that makes the change, so that there
-- is no change without its record. Prepended to every script that changes something on an
-- operator's behalf, which calls it once it knows the change will be made and before its
-- first write: Redis does not undo a script's earlier writes when a later command fails.
--
-- stream: the audit stream; tenant_stream: the tenant's audit stream, or the audit stream
-- again when the record concerns no tenant; record: the record (JSON). The tenant's copy has
-- the same id, so a cursor means the same in both.
local function audit(stream, tenant_stream, record)
  local id = redis.call('XADD', stream, '*', 'j', record)
  if tenant_stream ~= stream then redis.call('XADD', tenant_stream, id, 'j', record) end
  return id
end
