//! What partition 0 keeps for all: the catalogue, page tokens, test suites. The audit log is
//! in every partition (a change is recorded in the script that makes it, on its partition's
//! slot), so its listing merges them.

use std::time::Duration;

use async_trait::async_trait;

use super::PartitionedStore;
use super::ids::mark;
use super::merge::merged;
use crate::model::audit::AuditRecord;
use crate::model::test_suite::TestSuite;
use crate::model::{AccountOwners, ApiKey, Endpoint, LiveEndpoint, PageToken, Tenant};
use crate::store::types::{AuditQuery, IdempotencyClaim, Page};
use crate::store::{AuditLog, Catalogue, DisabledByHookd, PageTokens, StoreError, TestSuites};

#[async_trait]
impl Catalogue for PartitionedStore {
    async fn put_tenant(&self, tenant: &Tenant, audit: &AuditRecord) -> Result<(), StoreError> {
        self.catalogue().put_tenant(tenant, audit).await
    }
    async fn get_tenant(&self, id: &str) -> Result<Option<Tenant>, StoreError> {
        self.catalogue().get_tenant(id).await
    }
    async fn list_tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.catalogue().list_tenants().await
    }
    async fn put_api_key(
        &self,
        key_hash: &str,
        key: &ApiKey,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.catalogue().put_api_key(key_hash, key, audit).await
    }
    async fn api_key(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        self.catalogue().api_key(key_hash).await
    }
    async fn delete_api_key(
        &self,
        tenant_id: &str,
        key_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        self.catalogue()
            .delete_api_key(tenant_id, key_id, audit)
            .await
    }
    async fn account_owners(&self) -> Result<AccountOwners, StoreError> {
        self.catalogue().account_owners().await
    }
    async fn assign_accounts(
        &self,
        tenant_id: &str,
        accounts: &[String],
        audit: &AuditRecord,
    ) -> Result<Option<String>, StoreError> {
        self.catalogue()
            .assign_accounts(tenant_id, accounts, audit)
            .await
    }
    async fn release_account(
        &self,
        tenant_id: &str,
        account: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        self.catalogue()
            .release_account(tenant_id, account, audit)
            .await
    }
    async fn put_endpoint(
        &self,
        endpoint: &Endpoint,
        disabled: DisabledByHookd,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.catalogue()
            .put_endpoint(endpoint, disabled, audit)
            .await
    }
    async fn delete_endpoint(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        self.catalogue().delete_endpoint(id, audit).await
    }
    async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, StoreError> {
        self.catalogue().list_endpoints().await
    }
    async fn get_endpoint(&self, id: &str) -> Result<Option<LiveEndpoint>, StoreError> {
        self.catalogue().get_endpoint(id).await
    }
    async fn catalogue_version(&self) -> Result<u64, StoreError> {
        self.catalogue().catalogue_version().await
    }
    async fn claim_idempotency(
        &self,
        key: &str,
        ttl: Duration,
    ) -> Result<IdempotencyClaim, StoreError> {
        self.catalogue().claim_idempotency(key, ttl).await
    }
    async fn settle_idempotency(
        &self,
        key: &str,
        status: u16,
        body: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.catalogue()
            .settle_idempotency(key, status, body, ttl)
            .await
    }
    async fn release_idempotency(&self, key: &str) -> Result<(), StoreError> {
        self.catalogue().release_idempotency(key).await
    }
}

#[async_trait]
impl PageTokens for PartitionedStore {
    async fn put_page_token(
        &self,
        token: &PageToken,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.catalogue().put_page_token(token, audit).await
    }
    async fn page_token(
        &self,
        source: &str,
        page_id: &str,
    ) -> Result<Option<PageToken>, StoreError> {
        self.catalogue().page_token(source, page_id).await
    }
    async fn page_tokens(&self, source: Option<&str>) -> Result<Vec<PageToken>, StoreError> {
        self.catalogue().page_tokens(source).await
    }
    async fn delete_page_token(
        &self,
        source: &str,
        page_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        self.catalogue()
            .delete_page_token(source, page_id, audit)
            .await
    }
}

#[async_trait]
impl TestSuites for PartitionedStore {
    async fn put_test_suite(
        &self,
        suite: &TestSuite,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.catalogue().put_test_suite(suite, audit).await
    }
    async fn test_suite(&self, id: &str) -> Result<Option<TestSuite>, StoreError> {
        self.catalogue().test_suite(id).await
    }
    async fn test_suites(&self) -> Result<Vec<TestSuite>, StoreError> {
        self.catalogue().test_suites().await
    }
    async fn delete_test_suite(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        self.catalogue().delete_test_suite(id, audit).await
    }
}

#[async_trait]
impl AuditLog for PartitionedStore {
    async fn record_audit(&self, record: &AuditRecord) -> Result<String, StoreError> {
        self.catalogue().record_audit(record).await
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Page<AuditRecord>, StoreError> {
        merged(
            self.count(),
            q.cursor.as_deref(),
            q.limit,
            |p, cursor| {
                let query = AuditQuery {
                    cursor,
                    ..q.clone()
                };
                async move { self.parts[p].list_audit(&query).await }
            },
            |r: &AuditRecord| r.id.as_str(),
            |r, p| mark(&mut r.id, p),
        )
        .await
    }
}
