//! Page access tokens: one field of a hash per source and Page, the token sealed.

use async_trait::async_trait;

use super::RedisStore;
use crate::model::PageToken;
use crate::model::audit::AuditRecord;
use crate::store::{PageTokens, StoreError};

impl RedisStore {
    fn opened(&self, stored: PageToken) -> Result<PageToken, StoreError> {
        Ok(PageToken {
            token: self.secrets.open(&stored.token)?,
            ..stored
        })
    }
}

#[async_trait]
impl PageTokens for RedisStore {
    async fn put_page_token(
        &self,
        token: &PageToken,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let sealed = PageToken {
            token: self.secrets.seal(&token.token)?,
            ..token.clone()
        };
        let field = PageToken::storage_key(&token.source, &token.page_id);
        self.hset_json(
            "put_page_token",
            self.keys.page_tokens(),
            &field,
            &sealed,
            audit,
        )
        .await
    }

    async fn page_token(
        &self,
        source: &str,
        page_id: &str,
    ) -> Result<Option<PageToken>, StoreError> {
        let field = PageToken::storage_key(source, page_id);
        let stored: Option<PageToken> = self
            .hget_json("page_token", self.keys.page_tokens(), &field)
            .await?;
        stored.map(|t| self.opened(t)).transpose()
    }

    async fn page_tokens(&self, source: Option<&str>) -> Result<Vec<PageToken>, StoreError> {
        let all: Vec<(String, PageToken)> = self
            .hgetall_json("page_tokens", self.keys.page_tokens())
            .await?;
        let prefix = source.map_or_else(String::new, |s| PageToken::storage_key(s, ""));
        all.into_iter()
            .filter(|(field, _)| field.starts_with(&prefix))
            .map(|(_, stored)| self.opened(stored))
            .collect()
    }

    async fn delete_page_token(
        &self,
        source: &str,
        page_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let field = PageToken::storage_key(source, page_id);
        self.hdel_audited("delete_page_token", self.keys.page_tokens(), &field, audit)
            .await
    }
}
