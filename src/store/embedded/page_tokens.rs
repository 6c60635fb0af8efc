//! Page access tokens: one row per source and Page, the token sealed.

use async_trait::async_trait;

use super::audit::append;
use super::records::to_json;
use super::tables::PAGE_TOKENS;
use super::{EmbeddedStore, db_error};
use crate::model::PageToken;
use crate::model::audit::AuditRecord;
use crate::store::{PageTokens, StoreError};

impl EmbeddedStore {
    fn opened(&self, stored: PageToken) -> Result<PageToken, StoreError> {
        Ok(PageToken {
            token: self.secrets.open(&stored.token)?,
            ..stored
        })
    }
}

#[async_trait]
impl PageTokens for EmbeddedStore {
    async fn put_page_token(
        &self,
        token: &PageToken,
        audit: &AuditRecord,
    ) -> Result<(), StoreError> {
        let sealed = PageToken {
            token: self.secrets.seal(&token.token)?,
            ..token.clone()
        };
        let json = to_json("page token", &sealed)?;
        let key = PageToken::storage_key(&token.source, &token.page_id);
        self.put_json("put_page_token", PAGE_TOKENS, key, json, audit)
            .await
    }

    async fn page_token(
        &self,
        source: &str,
        page_id: &str,
    ) -> Result<Option<PageToken>, StoreError> {
        let key = PageToken::storage_key(source, page_id);
        let stored: Option<PageToken> = self.get_json("page_token", PAGE_TOKENS, &key).await?;
        stored.map(|t| self.opened(t)).transpose()
    }

    async fn page_tokens(&self, source: Option<&str>) -> Result<Vec<PageToken>, StoreError> {
        let prefix = source.map_or_else(String::new, |s| PageToken::storage_key(s, ""));
        let all: Vec<(String, PageToken)> = self.all_json("page_tokens", PAGE_TOKENS).await?;
        all.into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, t)| self.opened(t))
            .collect()
    }

    async fn delete_page_token(
        &self,
        source: &str,
        page_id: &str,
        audit: &AuditRecord,
    ) -> Result<bool, StoreError> {
        let key = PageToken::storage_key(source, page_id);
        let audit = audit.clone();
        self.write("delete_page_token", true, move |tx| {
            let mut t = tx.txn.open_table(PAGE_TOKENS).map_err(db_error)?;
            let removed = t.remove(key.as_str()).map_err(db_error)?.is_some();
            drop(t);
            if removed {
                append(tx, &audit)?;
            }
            Ok(removed)
        })
        .await
    }
}
