//! The catalogue: tenants, their keys and accounts, endpoints and their health. Every change
//! is durable before it is answered, and moves the catalogue version routers watch.

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

use std::time::Duration;

use super::audit::append;
use super::records::{IdempotencyRec, decode, encode, from_json, to_json};
use super::tables::*;
use super::{EmbeddedStore, db_error};
use crate::model::audit::AuditRecord;
use crate::model::{AccountOwners, ApiKey, Endpoint, EndpointHealth, LiveEndpoint, Tenant};
use crate::store::{Catalogue, DisabledByHookd, IdempotencyClaim, StoreError};

pub(super) fn bump_version(txn: &WriteTransaction) -> Result<(), StoreError> {
    let mut meta = txn.open_table(META).map_err(db_error)?;
    let v = meta
        .get(CATALOGUE_VERSION)
        .map_err(db_error)?
        .map_or(0, |v| v.value());
    meta.insert(CATALOGUE_VERSION, v + 1).map_err(db_error)?;
    Ok(())
}

pub(super) fn health_in(
    t: &impl ReadableTable<&'static str, &'static str>,
    id: &str,
) -> Result<EndpointHealth, StoreError> {
    Ok(match t.get(id).map_err(db_error)? {
        Some(v) => from_json("endpoint health", v.value())?,
        None => EndpointHealth::default(),
    })
}

/// hookd's own disabling of endpoint `id`, cleared.
fn clear_disabled(txn: &WriteTransaction, id: &str) -> Result<(), StoreError> {
    let mut t = txn.open_table(ENDPOINT_HEALTH).map_err(db_error)?;
    let mut health = health_in(&t, id)?;
    health.disabled_reason = None;
    health.disabled_at = None;
    health.failing_since = None;
    let json = to_json("endpoint health", &health)?;
    t.insert(id, json.as_str()).map_err(db_error)?;
    Ok(())
}

impl EmbeddedStore {
    /// Stores `json` under `key` with the change's audit record.
    pub(super) async fn put_json(
        &self,
        op: &'static str,
        table: redb::TableDefinition<'static, &'static str, &'static str>,
        key: String,
        json: String,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let audit = audit.clone();
        self.write(op, true, move |tx| {
            let mut t = tx.txn.open_table(table).map_err(db_error)?;
            t.insert(key.as_str(), json.as_str()).map_err(db_error)?;
            drop(t);
            append(tx, &audit)?;
            Ok(())
        })
        .await
    }

    pub(super) async fn get_json<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        op: &'static str,
        table: redb::TableDefinition<'static, &'static str, &'static str>,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let key = key.to_string();
        self.read(op, move |txn| {
            let t = txn.open_table(table).map_err(db_error)?;
            t.get(key.as_str())
                .map_err(db_error)?
                .map(|v| from_json(op, v.value()))
                .transpose()
        })
        .await
    }

    pub(super) async fn all_json<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        op: &'static str,
        table: redb::TableDefinition<'static, &'static str, &'static str>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        self.read(op, move |txn| {
            let t = txn.open_table(table).map_err(db_error)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(db_error)? {
                let (k, v) = item.map_err(db_error)?;
                out.push((k.value().to_string(), from_json(op, v.value())?));
            }
            Ok(out)
        })
        .await
    }
}

#[async_trait]
impl Catalogue for EmbeddedStore {
    async fn put_tenant(&self, tenant: &Tenant, audit: &AuditRecord) -> Result<(), StoreError> {
        let json = to_json("tenant", tenant)?;
        self.put_json("put_tenant", TENANTS, tenant.id.clone(), json, audit)
            .await
    }

    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.get_json("get_tenant", TENANTS, id).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let mut out: Vec<Tenant> = self
            .all_json("list_tenants", TENANTS)
            .await?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        out.sort_by_key(|t: &Tenant| t.created_at);
        Ok(out)
    }

    async fn put_api_key(
        &self,
        key_hash: &str,
        key: &ApiKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let json = to_json("api key", key)?;
        self.put_json("put_api_key", API_KEYS, key_hash.to_string(), json, audit)
            .await
    }

    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.get_json("api_key", API_KEYS, key_hash).await
    }

    async fn delete_api_key(
        &self,
        tenant_id: &str,
        key_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let (tenant_id, key_id) = (tenant_id.to_string(), key_id.to_string());
        let audit = audit.clone();
        self.write("delete_api_key", true, move |tx| {
            let mut t = tx.txn.open_table(API_KEYS).map_err(db_error)?;
            // Keys are few (a handful per tenant): a scan is cheap.
            let mut found = None;
            for item in t.iter().map_err(db_error)? {
                let (hash, json) = item.map_err(db_error)?;
                if let Ok(key) = serde_json::from_str::<ApiKey>(json.value())
                    && key.id == key_id
                    && key.tenant_id == tenant_id
                {
                    found = Some(hash.value().to_string());
                    break;
                }
            }
            match found {
                Some(hash) => {
                    t.remove(hash.as_str()).map_err(db_error)?;
                    drop(t);
                    append(tx, &audit)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        })
        .await
    }

    async fn account_owners(&self) -> Result<AccountOwners, StoreError> {
        self.read("account_owners", |txn| {
            let t = txn.open_table(ACCOUNTS).map_err(db_error)?;
            let mut owners = AccountOwners::new();
            for item in t.iter().map_err(db_error)? {
                let (k, v) = item.map_err(db_error)?;
                owners.insert(k.value().to_string(), v.value().to_string());
            }
            Ok(owners)
        })
        .await
    }

    async fn assign_accounts(
        &self,
        tenant_id: &str,
        accounts: &[String],
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError> {
        let (tenant_id, accounts) = (tenant_id.to_string(), accounts.to_vec());
        let audit = audit.clone();
        self.write("assign_accounts", true, move |tx| {
            let mut t = tx.txn.open_table(ACCOUNTS).map_err(db_error)?;
            for a in &accounts {
                if let Some(owner) = t.get(a.as_str()).map_err(db_error)?
                    && owner.value() != tenant_id
                {
                    return Ok(Some(a.clone()));
                }
            }
            for a in &accounts {
                t.insert(a.as_str(), tenant_id.as_str()).map_err(db_error)?;
            }
            drop(t);
            bump_version(tx.txn)?;
            append(tx, &audit)?;
            Ok(None)
        })
        .await
    }

    async fn release_account(
        &self,
        tenant_id: &str,
        account: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let (tenant_id, account) = (tenant_id.to_string(), account.to_string());
        let audit = audit.clone();
        self.write("release_account", true, move |tx| {
            let mut t = tx.txn.open_table(ACCOUNTS).map_err(db_error)?;
            let owned = t
                .get(account.as_str())
                .map_err(db_error)?
                .is_some_and(|o| o.value() == tenant_id);
            if !owned {
                return Ok(false);
            }
            t.remove(account.as_str()).map_err(db_error)?;
            drop(t);
            bump_version(tx.txn)?;
            append(tx, &audit)?;
            Ok(true)
        })
        .await
    }

    async fn put_endpoint(
        &self,
        endpoint: &Endpoint,
        disabled: DisabledByHookd,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let json = to_json("endpoint", &self.secrets.seal_endpoint(endpoint)?)?;
        let (id, audit) = (endpoint.id.clone(), audit.clone());
        self.write("put_endpoint", true, move |tx| {
            let mut t = tx.txn.open_table(ENDPOINTS).map_err(db_error)?;
            t.insert(id.as_str(), json.as_str()).map_err(db_error)?;
            drop(t);
            if disabled == DisabledByHookd::Clear {
                clear_disabled(tx.txn, &id)?;
            }
            bump_version(tx.txn)?;
            append(tx, &audit)?;
            Ok(())
        })
        .await
    }

    async fn delete_endpoint(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let (id, audit) = (id.to_string(), audit.clone());
        self.write("delete_endpoint", true, move |tx| {
            let mut t = tx.txn.open_table(ENDPOINTS).map_err(db_error)?;
            let removed = t.remove(id.as_str()).map_err(db_error)?.is_some();
            drop(t);
            let mut h = tx.txn.open_table(ENDPOINT_HEALTH).map_err(db_error)?;
            h.remove(id.as_str()).map_err(db_error)?;
            drop(h);
            if removed {
                bump_version(tx.txn)?;
                append(tx, &audit)?;
            }
            Ok(removed)
        })
        .await
    }

    async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, StoreError> {
        let stored = self
            .read("list_endpoints", |txn| {
                let t = txn.open_table(ENDPOINTS).map_err(db_error)?;
                let h = txn.open_table(ENDPOINT_HEALTH).map_err(db_error)?;
                let mut out: Vec<LiveEndpoint> = Vec::new();
                for item in t.iter().map_err(db_error)? {
                    let (k, v) = item.map_err(db_error)?;
                    out.push(LiveEndpoint {
                        endpoint: from_json("endpoint", v.value())?,
                        health: health_in(&h, k.value())?,
                    });
                }
                out.sort_by_key(|e| e.endpoint.created_at);
                Ok(out)
            })
            .await?;
        stored
            .into_iter()
            .map(|mut live| {
                live.endpoint = self.secrets.open_endpoint(live.endpoint)?;
                Ok(live)
            })
            .collect()
    }

    async fn get_endpoint(&self, id: &str) -> Result<Option<LiveEndpoint>, StoreError> {
        let id = id.to_string();
        let stored = self
            .read("get_endpoint", move |txn| {
                let t = txn.open_table(ENDPOINTS).map_err(db_error)?;
                let h = txn.open_table(ENDPOINT_HEALTH).map_err(db_error)?;
                let Some(v) = t.get(id.as_str()).map_err(db_error)? else {
                    return Ok(None);
                };
                Ok(Some(LiveEndpoint {
                    endpoint: from_json("endpoint", v.value())?,
                    health: health_in(&h, &id)?,
                }))
            })
            .await?;
        stored
            .map(|mut live| {
                live.endpoint = self.secrets.open_endpoint(live.endpoint)?;
                Ok(live)
            })
            .transpose()
    }

    async fn claim_idempotency(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        let key = key.to_string();
        self.write("claim_idempotency", true, move |tx| {
            let mut t = tx.txn.open_table(IDEMPOTENCY).map_err(db_error)?;
            let current: Option<IdempotencyRec> = t
                .get(key.as_str())
                .map_err(db_error)?
                .map(|v| decode("idempotency key", v.value()))
                .transpose()?
                .filter(|r: &IdempotencyRec| r.expires_ms > tx.now_ms);
            Ok(match current {
                Some(IdempotencyRec {
                    answer: Some((status, body)),
                    ..
                }) => IdempotencyClaim::Done { status, body },
                Some(_) => IdempotencyClaim::InProgress,
                None => {
                    let rec = IdempotencyRec {
                        expires_ms: tx.now_ms + ttl.as_millis() as u64,
                        answer: None,
                    };
                    t.insert(key.as_str(), encode("idempotency key", &rec)?.as_slice())
                        .map_err(db_error)?;
                    IdempotencyClaim::Fresh
                }
            })
        })
        .await
    }

    async fn settle_idempotency(
        &self,
        key: &str,
        status: u16,
        body: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let (key, body) = (key.to_string(), body.to_string());
        self.write("settle_idempotency", true, move |tx| {
            let rec = IdempotencyRec {
                expires_ms: tx.now_ms + ttl.as_millis() as u64,
                answer: Some((status, body.clone())),
            };
            let mut t = tx.txn.open_table(IDEMPOTENCY).map_err(db_error)?;
            t.insert(key.as_str(), encode("idempotency key", &rec)?.as_slice())
                .map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn release_idempotency(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.write("release_idempotency", true, move |tx| {
            let mut t = tx.txn.open_table(IDEMPOTENCY).map_err(db_error)?;
            t.remove(key.as_str()).map_err(db_error)?;
            Ok(())
        })
        .await
    }

    async fn catalogue_version(&self) -> Result<u64, StoreError> {
        self.read("catalogue_version", |txn| {
            let meta = txn.open_table(META).map_err(db_error)?;
            Ok(meta
                .get(CATALOGUE_VERSION)
                .map_err(db_error)?
                .map_or(0, |v| v.value()))
        })
        .await
    }
}
