//! A Page access token, stored for the Graph calls on one Page of a source (a Page's webhook
//! subscriptions need the Page's own token).

use serde::{Deserialize, Serialize};

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken {
    pub source: String,
    pub page_id: String,
    pub token: String,
    /// Unix milliseconds.
    pub stored_at: u64,
}

impl std::fmt::Debug for PageToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageToken")
            .field("source", &self.source)
            .field("page_id", &self.page_id)
            .field("token", &"<redacted>")
            .field("stored_at", &self.stored_at)
            .finish()
    }
}

impl PageToken {
    /// Where it is stored: source and Page, apart by a byte neither can hold.
    pub fn storage_key(source: &str, page_id: &str) -> String {
        format!("{source}\u{1f}{page_id}")
    }
}
