//! Test suites: one field of a hash per suite, its latest runs inside.

use async_trait::async_trait;

use super::catalogue::HDEL_IF_LUA;
use super::{RedisStore, json_error};
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
        let key = self.keys.test_suites();
        let all: Vec<(String, String)> = self
            .timed("test_suites", async {
                Ok(redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        let mut suites = all
            .into_iter()
            .map(|(_, json)| serde_json::from_str(&json).map_err(|e| json_error("test_suites", e)))
            .collect::<Result<Vec<TestSuite>, StoreError>>()?;
        suites.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(suites)
    }

    async fn delete_test_suite(&self, id: &str, audit: &AuditRecord) -> Result<bool, StoreError> {
        let key = self.keys.test_suites();
        let read: Option<String> = self
            .timed("delete_test_suite", async {
                Ok(redis::cmd("HGET")
                    .arg(&key)
                    .arg(id)
                    .query_async(&mut self.conn())
                    .await?)
            })
            .await?;
        let Some(json) = read else {
            return Ok(false);
        };
        let script = redis::Script::new(HDEL_IF_LUA);
        let mut inv = self.audited(&script, audit)?;
        inv.key(&key).arg(id).arg(json);
        let removed: u64 = self.run_script("delete_test_suite", inv).await?;
        Ok(removed == 1)
    }
}
