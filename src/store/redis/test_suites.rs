//! Test suites: one field of a hash per suite, its latest runs inside.

use async_trait::async_trait;

use super::RedisStore;
use crate::model::audit::AuditRecord;
use crate::model::test_suite::TestSuite;
use crate::store::{StoreError, TestSuites};

#[async_trait]
impl TestSuites for RedisStore {
    async fn put_test_suite(
        &self,
        suite: &TestSuite,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        self.hset_json(
            "put_test_suite",
            self.keys.test_suites(),
            &suite.id,
            suite,
            audit,
        )
        .await
    }

    async fn test_suite(&self, id: &str) -> Result<Option<TestSuite>, StoreError> {
        self.hget_json("test_suite", self.keys.test_suites(), id)
            .await
    }

    async fn test_suites(&self) -> Result<Vec<TestSuite>, StoreError> {
        let all: Vec<(String, TestSuite)> = self
            .hgetall_json("test_suites", self.keys.test_suites())
            .await?;
        let mut suites: Vec<TestSuite> = all.into_iter().map(|(_, s)| s).collect();
        suites.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(suites)
    }

    async fn delete_test_suite(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        self.hdel_audited("delete_test_suite", self.keys.test_suites(), id, audit)
            .await
    }
}
