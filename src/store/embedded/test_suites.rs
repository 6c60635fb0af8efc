//! Test suites: one JSON row per suite, its latest runs inside.

use async_trait::async_trait;

use super::audit::append;
use super::records::to_json;
use super::tables::TEST_SUITES;
use super::{EmbeddedStore, db_error};
use crate::model::audit::AuditRecord;
use crate::model::test_suite::TestSuite;
use crate::store::{StoreError, TestSuites};

#[async_trait]
impl TestSuites for EmbeddedStore {
    async fn put_test_suite(
        &self,
        suite: &TestSuite,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let json = to_json("test suite", suite)?;
        self.put_json("put_test_suite", TEST_SUITES, suite.id.clone(), json, audit)
            .await
    }

    async fn test_suite(&self, id: &str) -> Result<Option<TestSuite>, StoreError> {
        self.get_json("test_suite", TEST_SUITES, id).await
    }

    async fn test_suites(&self) -> Result<Vec<TestSuite>, StoreError> {
        let all: Vec<(String, TestSuite)> = self.all_json("test_suites", TEST_SUITES).await?;
        let mut suites: Vec<TestSuite> = all.into_iter().map(|(_, s)| s).collect();
        suites.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(suites)
    }

    async fn delete_test_suite(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let id = id.to_string();
        let audit = audit.clone();
        self.write("delete_test_suite", true, move |tx| {
            let mut t = tx.txn.open_table(TEST_SUITES).map_err(db_error)?;
            let removed = t.remove(id.as_str()).map_err(db_error)?.is_some();
            drop(t);
            if removed {
                append(tx, &audit)?;
            }
            Ok(removed)
        })
        .await
    }
}
