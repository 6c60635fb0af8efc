//! The catalogue: tenants, keys, accounts and endpoints as JSON in hashes, and a version
//! counter every instance's router watches.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::RedisStore;
use super::json_error;
use crate::model::audit::AuditRecord;
use crate::model::{AccountOwners, ApiKey, Endpoint, EndpointHealth, LiveEndpoint, Tenant};
use crate::store::{Catalogue, DisabledByHookd, IdempotencyClaim, StoreError};

/// The scripts below change the catalogue with the change's audit record: KEYS[1], KEYS[2]
/// and ARGV[1] are the audit's (see `audit.rs`), their own keys and arguments follow. Each
/// writes the record once it knows the change will be made and before making it: Redis does
/// not undo a script's writes when a later command fails, and a record of a change that an
/// error then stopped is the lesser harm than a change without its record.
macro_rules! audited_lua {
    ($body:expr) => {
        concat!(include_str!("scripts/audit.lua"), $body)
    };
}

/// Sets a field of a hash. KEYS[3] hash; ARGV[2] field, ARGV[3] value.
const HSET_LUA: &str = audited_lua!(
    r"
audit(KEYS[1], KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
"
);

/// Deletes a field of a hash if it still holds what was read. KEYS[3] hash; ARGV[2] field,
/// ARGV[3] value read.
pub(super) const HDEL_IF_LUA: &str = audited_lua!(
    r"
if redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[3] then return 0 end
audit(KEYS[1], KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"
);

/// Stores an endpoint, clearing hookd's own disabling of it when asked. KEYS[3] endpoints,
/// KEYS[4] version, KEYS[5] its health; ARGV[2] id, ARGV[3] endpoint, ARGV[4] `1` to clear.
const PUT_ENDPOINT_LUA: &str = audited_lua!(
    r"
audit(KEYS[1], KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
if ARGV[4] == '1' then
  redis.call('HDEL', KEYS[5], 'disabled_reason', 'disabled_at', 'failing_since')
end
redis.call('INCR', KEYS[4])
"
);

/// Deletes an endpoint and its health. KEYS as for storing one; ARGV[2] id.
const DELETE_ENDPOINT_LUA: &str = audited_lua!(
    r"
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 0 then return 0 end
audit(KEYS[1], KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[2])
redis.call('DEL', KEYS[5])
redis.call('INCR', KEYS[4])
return 1
"
);

/// Assigns accounts to a tenant unless another tenant owns one of them (returned then).
/// KEYS[3] accounts hash, KEYS[4] endpoints version; ARGV[2] tenant id, then the accounts.
const ASSIGN_ACCOUNTS_LUA: &str = audited_lua!(
    r"
for i = 3, #ARGV do
  local owner = redis.call('HGET', KEYS[3], ARGV[i])
  if owner and owner ~= ARGV[2] then return ARGV[i] end
end
audit(KEYS[1], KEYS[2], ARGV[1])
for i = 3, #ARGV do redis.call('HSET', KEYS[3], ARGV[i], ARGV[2]) end
redis.call('INCR', KEYS[4])
return false
"
);

/// Releases an account if `tenant` owns it. KEYS as above; ARGV[2] tenant, ARGV[3] account.
const RELEASE_ACCOUNT_LUA: &str = audited_lua!(
    r"
if redis.call('HGET', KEYS[3], ARGV[3]) ~= ARGV[2] then return 0 end
audit(KEYS[1], KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('INCR', KEYS[4])
return 1
"
);

fn health_from(map: &BTreeMap<String, String>) -> EndpointHealth {
    let number = |k: &str| map.get(k).and_then(|v| v.parse().ok());
    EndpointHealth {
        disabled_reason: map.get("disabled_reason").cloned(),
        disabled_at: number("disabled_at"),
        last_success: number("last_success"),
        last_failure: number("last_failure"),
        failing_since: number("failing_since"),
    }
}

impl RedisStore {
    /// Stores `value` as JSON in field `field` of hash `key`, with the change's record.
    pub(super) async fn hset_json<T: serde::Serialize + Sync>(
        &self,
        op: &'static str,
        key: String,
        field: &str,
        value: &T,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(value).map_err(|e| json_error(op, e))?;
        let script = redis::Script::new(HSET_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(key).arg(field).arg(json);
        let _: () = self.run_script(op, inv).await?;
        Ok(())
    }

    /// Reads field `field` of hash `key` as JSON.
    pub(super) async fn hget_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: String,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        let raw = self.hget(op, &key, field).await?;
        raw.map(|j| serde_json::from_str(&j).map_err(|e| json_error(op, e)))
            .transpose()
    }

    /// Field `field` of hash `key`, as stored.
    async fn hget(
        &self,
        op: &'static str,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, StoreError> {
        self.timed(op, async {
            Ok(redis::cmd("HGET")
                .arg(key)
                .arg(field)
                .query_async(&mut self.conn())
                .await?)
        })
        .await
    }

    /// Every field of hash `key` with its value read as JSON, by field.
    pub(super) async fn hgetall_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: String,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let all: BTreeMap<String, String> = self
            .timed(op, async {
                Ok(redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        all.into_iter()
            .map(|(field, j)| {
                Ok((
                    field,
                    serde_json::from_str(&j).map_err(|e| json_error(op, e))?,
                ))
            })
            .collect()
    }

    /// Deletes field `field` of hash `key` with the change's record; false when there is none
    /// (and nothing is recorded).
    pub(super) async fn hdel_audited(
        &self,
        op: &'static str,
        key: String,
        field: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let Some(json) = self.hget(op, &key, field).await? else {
            return Ok(false);
        };
        // Deleted only if it is still what was read.
        let script = redis::Script::new(HDEL_IF_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(&key).arg(field).arg(json);
        let removed: u64 = self.run_script(op, inv).await?;
        Ok(removed == 1)
    }
}

#[async_trait]
impl Catalogue for RedisStore {
    async fn put_tenant(&self, tenant: &Tenant, audit: &AuditRecord) -> Result<(), StoreError> {
        self.hset_json("put_tenant", self.keys.tenants(), &tenant.id, tenant, audit)
            .await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.hget_json("get_tenant", self.keys.tenants(), id).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let all: Vec<(String, Tenant)> = self
            .hgetall_json("list_tenants", self.keys.tenants())
            .await?;
        let mut out: Vec<Tenant> = all.into_iter().map(|(_, t)| t).collect();
        out.sort_by_key(|t| t.created_at);
        Ok(out)
    }

    async fn put_api_key(
        &self,
        key_hash: &str,
        key: &ApiKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.hset_json("put_api_key", self.keys.api_keys(), key_hash, key, audit)
            .await
    }

    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.hget_json("api_key", self.keys.api_keys(), key_hash)
            .await
    }

    async fn delete_api_key(
        &self,
        tenant_id: &str,
        key_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let k = self.keys.api_keys();
        // Keys are few (a handful per tenant); a scan of the hash is cheap. The script deletes
        // the key only if it is still what was read.
        let all: BTreeMap<String, String> = self
            .timed("delete_api_key", async {
                Ok(redis::cmd("HGETALL")
                    .arg(&k)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        let found = all.into_iter().find(|(_, json)| {
            serde_json::from_str::<ApiKey>(json)
                .is_ok_and(|key| key.id == key_id && key.tenant_id == tenant_id)
        });
        let Some((hash, json)) = found else {
            return Ok(false);
        };
        let script = redis::Script::new(HDEL_IF_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(&k).arg(hash).arg(json);
        let removed: u64 = self.run_script("delete_api_key", inv).await?;
        Ok(removed == 1)
    }

    async fn account_owners(&self) -> Result<AccountOwners, StoreError> {
        let key = self.keys.accounts();
        self.timed("account_owners", async {
            Ok(redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut self.conn())
                .await?)
        })
        .await
    }

    async fn assign_accounts(
        &self,
        tenant_id: &str,
        accounts: &[String],
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError> {
        let script = redis::Script::new(ASSIGN_ACCOUNTS_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(self.keys.accounts())
            .key(self.keys.endpoints_version())
            .arg(tenant_id)
            .arg(accounts);
        self.run_script("assign_accounts", inv).await
    }

    async fn release_account(
        &self,
        tenant_id: &str,
        account: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let script = redis::Script::new(RELEASE_ACCOUNT_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(self.keys.accounts())
            .key(self.keys.endpoints_version())
            .arg(tenant_id)
            .arg(account);
        let released: u64 = self.run_script("release_account", inv).await?;
        Ok(released == 1)
    }

    async fn put_endpoint(
        &self,
        endpoint: &Endpoint,
        disabled: DisabledByHookd,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let sealed = self.secrets.seal_endpoint(endpoint)?;
        let json = serde_json::to_string(&sealed).map_err(|e| json_error("endpoint", e))?;
        let script = redis::Script::new(PUT_ENDPOINT_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(self.keys.endpoints())
            .key(self.keys.endpoints_version())
            .key(self.keys.endpoint_health(&endpoint.id))
            .arg(&endpoint.id)
            .arg(json)
            .arg(u8::from(disabled == DisabledByHookd::Clear));
        let _: () = self.run_script("put_endpoint", inv).await?;
        Ok(())
    }

    async fn delete_endpoint(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let script = redis::Script::new(DELETE_ENDPOINT_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(self.keys.endpoints())
            .key(self.keys.endpoints_version())
            .key(self.keys.endpoint_health(id))
            .arg(id);
        let removed: u64 = self.run_script("delete_endpoint", inv).await?;
        Ok(removed == 1)
    }

    async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, StoreError> {
        let key = self.keys.endpoints();
        self.timed("list_endpoints", async {
            let mut conn = self.conn();
            let all: BTreeMap<String, String> = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await?;
            let endpoints: Vec<Endpoint> = all
                .values()
                .filter_map(|j| match serde_json::from_str(j) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::error!(error = %e, "an endpoint record does not parse; skipped");
                        None
                    }
                })
                .collect();
            let mut pipe = redis::pipe();
            for e in &endpoints {
                pipe.cmd("HGETALL").arg(self.keys.endpoint_health(&e.id));
            }
            let healths: Vec<BTreeMap<String, String>> = if endpoints.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut conn).await?
            };
            let mut out: Vec<LiveEndpoint> = endpoints
                .into_iter()
                .zip(healths)
                .map(|(endpoint, h)| {
                    Ok(LiveEndpoint {
                        endpoint: self.secrets.open_endpoint(endpoint)?,
                        health: health_from(&h),
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            out.sort_by(|a, b| {
                (a.endpoint.created_at, &a.endpoint.id)
                    .cmp(&(b.endpoint.created_at, &b.endpoint.id))
            });
            Ok(out)
        })
        .await
    }

    async fn get_endpoint(&self, id: &str) -> Result<Option<LiveEndpoint>, StoreError> {
        let (key, health) = (self.keys.endpoints(), self.keys.endpoint_health(id));
        self.timed("get_endpoint", async {
            let (json, h): (Option<String>, BTreeMap<String, String>) = redis::pipe()
                .cmd("HGET")
                .arg(&key)
                .arg(id)
                .cmd("HGETALL")
                .arg(&health)
                .query_async(&mut self.conn())
                .await?;
            json.map(|j| {
                let stored = serde_json::from_str(&j).map_err(|e| json_error("endpoint", e))?;
                Ok(LiveEndpoint {
                    endpoint: self.secrets.open_endpoint(stored)?,
                    health: health_from(&h),
                })
            })
            .transpose()
        })
        .await
    }

    async fn claim_idempotency(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let k = self.keys.idempotency(key);
        self.timed("claim_idempotency", async {
            let mut conn = self.conn();
            // SET NX GET: the claim and the previous record in one atomic command.
            let previous: Option<String> = redis::cmd("SET")
                .arg(&k)
                .arg("pending")
                .arg("NX")
                .arg("GET")
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async(&mut conn)
                .await?;
            Ok(match previous {
                None => IdempotencyClaim::Fresh,
                Some(p) if p == "pending" => IdempotencyClaim::InProgress,
                Some(answer) => match answer.split_once(':') {
                    Some((status, body)) => IdempotencyClaim::Done {
                        status: status.parse().unwrap_or(200),
                        body: body.to_string(),
                    },
                    None => IdempotencyClaim::InProgress,
                },
            })
        })
        .await
    }

    async fn settle_idempotency(
        &self,
        key: &str,
        status: u16,
        body: &str,
        ttl: std::time::Duration,
    ) -> Result<(), StoreError> {
        let k = self.keys.idempotency(key);
        self.timed("settle_idempotency", async {
            let _: () = redis::cmd("SET")
                .arg(&k)
                .arg(format!("{status}:{body}"))
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
    }

    async fn release_idempotency(&self, key: &str) -> Result<(), StoreError> {
        let k = self.keys.idempotency(key);
        self.timed("release_idempotency", async {
            let _: () = redis::cmd("DEL")
                .arg(&k)
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
    }

    async fn catalogue_version(&self) -> Result<u64, StoreError> {
        let key = self.keys.endpoints_version();
        self.timed("endpoints_version", async {
            let v: Option<u64> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut self.conn())
                .await?;
            Ok(v.unwrap_or(0))
        })
        .await
    }
}
