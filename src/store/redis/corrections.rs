//! Quarantined bodies put back in the journal or deleted, events deleted: each in one script
//! with its audit record.

use async_trait::async_trait;

use super::RedisStore;
use super::reply::is_stream_id;
use crate::model::audit::AuditRecord;
use crate::model::delivery::DeliveryKind;
use crate::store::{Corrections, StoreError};

/// Moves a quarantined body to the journal. KEYS[3] quarantine, KEYS[4] journal; ARGV[2] the
/// body's id, ARGV[3] the journal's MINID. The new journal id, or false.
const REQUEUE_LUA: &str = concat!(
    include_str!("scripts/audit.lua"),
    r"
local found = redis.call('XRANGE', KEYS[3], ARGV[2], ARGV[2])
if #found == 0 then return false end
local fields = found[1][2]
local f = {}
for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
audit(KEYS[1], KEYS[2], ARGV[1])
local id = redis.call('XADD', KEYS[4], 'MINID', '~', ARGV[3], '*',
  'source', f['source'] or '', 'received_at', f['received_at'] or '0',
  'request_id', f['request_id'] or '', 'signature', f['signature'] or '',
  'user_agent', '', 'body', f['body'] or '')
redis.call('XDEL', KEYS[3], ARGV[2])
return id
"
);

/// Deletes a quarantined body. KEYS[3] quarantine; ARGV[2] its id. 1, or 0 when absent.
const DELETE_LUA: &str = concat!(
    include_str!("scripts/audit.lua"),
    r"
if #redis.call('XRANGE', KEYS[3], ARGV[2], ARGV[2]) == 0 then return 0 end
audit(KEYS[1], KEYS[2], ARGV[1])
return redis.call('XDEL', KEYS[3], ARGV[2])
"
);

/// Deletes an event and its delivery states. KEYS[3] events, KEYS[4] the states hash of its
/// second; ARGV[2] its id. Index entries naming it resolve to nothing once it is gone, and go
/// with retention. 1, or 0 when absent.
const DELETE_EVENT_LUA: &str = concat!(
    include_str!("scripts/audit.lua"),
    r"
local found = redis.call('XRANGE', KEYS[3], ARGV[2], ARGV[2])
if #found == 0 then return 0 end
local fields = found[1][2]
local eps = ''
for i = 1, #fields, 2 do
  if fields[i] == 'eps' then eps = fields[i + 1] end
end
audit(KEYS[1], KEYS[2], ARGV[1])
redis.call('XDEL', KEYS[3], ARGV[2])
for ep in string.gmatch(eps, '[^,]+') do
  redis.call('HDEL', KEYS[4], ARGV[2] .. '|' .. ep)
end
return 1
"
);

fn checked(id: &str) -> Result<(), StoreError> {
    if is_stream_id(id) {
        Ok(())
    } else {
        Err(StoreError::InvalidInput {
            parameter: "id",
            problem: format!("{id:?} is not an id such as 1700000000000-0"),
        })
    }
}

#[async_trait]
impl Corrections for RedisStore {
    async fn requeue_quarantined(
        &self,
        id: &str,
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError> {
        checked(id)?;
        let script = redis::Script::new(REQUEUE_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(self.keys.quarantine())
            .key(self.keys.inbound())
            .arg(id)
            .arg(self.min_id());
        self.run_script("requeue_quarantined", inv).await
    }

    async fn delete_quarantined(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        checked(id)?;
        let script = redis::Script::new(DELETE_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(self.keys.quarantine()).arg(id);
        let removed: u64 = self.run_script("delete_quarantined", inv).await?;
        Ok(removed == 1)
    }

    async fn delete_event(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        checked(id)?;
        let (states, _) = self.keys.delivery_state_slot(DeliveryKind::Event, id, "");
        let script = redis::Script::new(DELETE_EVENT_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(self.keys.events()).key(states).arg(id);
        let removed: u64 = self.run_script("delete_event", inv).await?;
        Ok(removed == 1)
    }
}
