//! The catalogue: tenants, keys, accounts and endpoints as JSON in hashes, and a version
//! counter every instance's router watches.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::RedisStore;
use super::json_error;
use crate::model::{AccountOwners, ApiKey, Endpoint, EndpointHealth, LiveEndpoint, Tenant};
use crate::store::{Catalogue, IdempotencyClaim, StoreError};

/// Assigns accounts to a tenant unless another tenant owns one of them (returned then).
/// KEYS[1] accounts hash, KEYS[2] endpoints version; ARGV[1] tenant id, then the accounts.
const ASSIGN_ACCOUNTS_LUA: &str = r"
for i = 2, #ARGV do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if owner and owner ~= ARGV[1] then return ARGV[i] end
end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], ARGV[1]) end
redis.call('INCR', KEYS[2])
return false
";

/// Releases an account if `tenant` owns it. KEYS as above; ARGV[1] tenant, ARGV[2] account.
const RELEASE_ACCOUNT_LUA: &str = r"
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1
";

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
    /// Stores `value` as JSON in field `field` of hash `key`.
    async fn hset_json<T: serde::Serialize + Sync>(
        &self,
        op: &'static str,
        key: String,
        field: &str,
        value: &T,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(value).map_err(|e| json_error(op, e))?;
        self.timed(op, async {
            let _: () = redis::cmd("HSET")
                .arg(&key)
                .arg(field)
                .arg(json)
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
    }

    /// Reads field `field` of hash `key` as JSON.
    async fn hget_json<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        key: String,
        field: &str,
    ) -> Result<Option<T>, StoreError> {
        let raw: Option<String> = self
            .timed(op, async {
                Ok(redis::cmd("HGET")
                    .arg(&key)
                    .arg(field)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        raw.map(|j| serde_json::from_str(&j).map_err(|e| json_error(op, e)))
            .transpose()
    }
}

#[async_trait]
impl Catalogue for RedisStore {
    async fn put_tenant(&self, tenant: &Tenant) -> Result<(), StoreError> {
        self.hset_json("put_tenant", self.keys.tenants(), &tenant.id, tenant)
            .await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.hget_json("get_tenant", self.keys.tenants(), id).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let key = self.keys.tenants();
        let all: BTreeMap<String, String> = self
            .timed("list_tenants", async {
                Ok(redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        let mut out: Vec<Tenant> = all
            .values()
            .map(|j| serde_json::from_str(j).map_err(|e| json_error("tenant", e)))
            .collect::<Result<_, _>>()?;
        out.sort_by_key(|t| t.created_at);
        Ok(out)
    }

    async fn put_api_key(&self, key_hash: &str, key: &ApiKey) -> Result<(), StoreError> {
        self.hset_json("put_api_key", self.keys.api_keys(), key_hash, key)
            .await
    }

    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.hget_json("api_key", self.keys.api_keys(), key_hash)
            .await
    }

    async fn delete_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool, StoreError> {
        let k = self.keys.api_keys();
        self.timed("delete_api_key", async {
            let mut conn = self.conn();
            // Keys are few (a handful per tenant); a scan of the hash is cheap.
            let all: BTreeMap<String, String> =
                redis::cmd("HGETALL").arg(&k).query_async(&mut conn).await?;
            for (hash, json) in all {
                let Ok(key) = serde_json::from_str::<ApiKey>(&json) else {
                    continue;
                };
                if key.id == key_id && key.tenant_id == tenant_id {
                    let removed: u64 = redis::cmd("HDEL")
                        .arg(&k)
                        .arg(&hash)
                        .query_async(&mut conn)
                        .await?;
                    return Ok(removed > 0);
                }
            }
            Ok(false)
        })
        .await
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
    ) -> Result<Option<String>, StoreError> {
        let (key, version) = (self.keys.accounts(), self.keys.endpoints_version());
        self.timed("assign_accounts", async {
            Ok(redis::Script::new(ASSIGN_ACCOUNTS_LUA)
                .key(&key)
                .key(&version)
                .arg(tenant_id)
                .arg(accounts)
                .invoke_async(&mut self.conn())
                .await?)
        })
        .await
    }

    async fn release_account(&self, tenant_id: &str, account: &str) -> Result<bool, StoreError> {
        let (key, version) = (self.keys.accounts(), self.keys.endpoints_version());
        self.timed("release_account", async {
            let released: u64 = redis::Script::new(RELEASE_ACCOUNT_LUA)
                .key(&key)
                .key(&version)
                .arg(tenant_id)
                .arg(account)
                .invoke_async(&mut self.conn())
                .await?;
            Ok(released == 1)
        })
        .await
    }

    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        let sealed = self.secrets.seal_endpoint(endpoint)?;
        let json = serde_json::to_string(&sealed).map_err(|e| json_error("endpoint", e))?;
        let (key, version) = (self.keys.endpoints(), self.keys.endpoints_version());
        self.timed("put_endpoint", async {
            let _: () = redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(&key)
                .arg(&endpoint.id)
                .arg(json)
                .ignore()
                .cmd("INCR")
                .arg(&version)
                .ignore()
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
    }

    async fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let (key, version) = (self.keys.endpoints(), self.keys.endpoints_version());
        let health = self.keys.endpoint_health(id);
        self.timed("delete_endpoint", async {
            let (removed,): (u64,) = redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&key)
                .arg(id)
                .cmd("DEL")
                .arg(&health)
                .ignore()
                .cmd("INCR")
                .arg(&version)
                .ignore()
                .query_async(&mut self.conn())
                .await?;
            Ok(removed > 0)
        })
        .await
    }

    async fn reset_endpoint_health(&self, id: &str) -> Result<(), StoreError> {
        let health = self.keys.endpoint_health(id);
        let version = self.keys.endpoints_version();
        self.timed("reset_endpoint_health", async {
            let _: () = redis::pipe()
                .atomic()
                .cmd("HDEL")
                .arg(&health)
                .arg("disabled_reason")
                .arg("disabled_at")
                .arg("failing_since")
                .ignore()
                .cmd("INCR")
                .arg(&version)
                .ignore()
                .query_async(&mut self.conn())
                .await?;
            Ok(())
        })
        .await
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
