//! A single event split out of a Meta body, and the key that recognises it when Meta sends it
//! again.

use sha2::{Digest, Sha256};

/// Where an event comes from. Page messaging and Page changes are told apart because
/// subscribers treat a Messenger conversation and a page's feed as different products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    WhatsApp,
    Messenger,
    Page,
    Instagram,
    /// An `object` hookd does not know yet; kept, never rejected.
    Other,
}

impl Platform {
    pub const ALL: [Platform; 5] = [
        Platform::WhatsApp,
        Platform::Messenger,
        Platform::Page,
        Platform::Instagram,
        Platform::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::WhatsApp => "whatsapp",
            Platform::Messenger => "messenger",
            Platform::Page => "page",
            Platform::Instagram => "instagram",
            Platform::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        Platform::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// One event, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub platform: Platform,
    /// `platform.field`, e.g. `whatsapp.statuses`.
    pub event_type: String,
    /// The receiving account: WhatsApp phone number id (WABA id when there is none), page id or
    /// Instagram account id. Always text, even when Meta sent a number.
    pub account_id: String,
    /// The envelope entry the event came from (`entry.id`): the WhatsApp Business Account of
    /// a phone number, else the same page or Instagram account as `account_id`. Ownership and
    /// endpoint filters accept either, so a WABA id covers all its numbers.
    pub entry_id: String,
    /// When the event happened according to Meta, in Unix milliseconds, when the body says.
    pub occurred_at_ms: Option<u64>,
    pub dedup_key: DedupKey,
    /// The event alone, as JSON.
    pub data: String,
    /// The envelope member naming the user the event is about (`"sender":{…}` for a WhatsApp
    /// message, `"recipient":{…}` for a status; see `identity`), or empty.
    pub identity: String,
    /// The conversation the event belongs to (see [`super::conversation`]).
    pub conversation: String,
    /// Set on a WhatsApp status: its message and how far the message has come.
    pub status_step: Option<super::conversation::StatusStep>,
}

/// What makes an event the same event when Meta sends it again, possibly re-batched with
/// others: Meta's own ids, scoped by event kind and receiving account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupKey(String);

impl DedupKey {
    /// Joins the parts with a separator that cannot occur in Meta's ids.
    pub fn new(kind: &str, account: &str, parts: &[&str]) -> DedupKey {
        let mut s = String::with_capacity(kind.len() + account.len() + 64);
        s.push_str(kind);
        s.push('\u{1f}');
        s.push_str(account);
        for part in parts {
            s.push('\u{1f}');
            s.push_str(part);
        }
        DedupKey(s)
    }

    /// The key within `scope` alone (a test run), apart from every key outside it.
    pub fn scoped(&self, scope: &str) -> DedupKey {
        DedupKey(format!("{scope}\u{1f}\u{1f}{}", self.0))
    }

    /// The readable form, for tests and logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fixed-size digest for storage: Meta's message ids run to hundreds of bytes, and
    /// dedup keys are kept for days.
    pub fn digest_hex(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..16])
    }
}

/// The metric label for an event type: the type itself when known, else `other`.
/// Metrics label only catalogued types, so a new Meta field cannot grow a metric without bound.
pub fn type_label(event_type: &str) -> &'static str {
    super::catalogue::find(event_type).map_or("other", |t| t.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keys_with_shifted_parts_differ() {
        let a = DedupKey::new("k", "acct", &["ab", "c"]);
        let b = DedupKey::new("k", "acct", &["a", "bc"]);
        assert_ne!(a, b);
        assert_ne!(a.digest_hex(), b.digest_hex());
        assert_eq!(a.digest_hex().len(), 32);
    }

    #[test]
    fn a_scoped_key_differs_from_the_key_and_from_other_scopes() {
        let k = DedupKey::new("k", "acct", &["id"]);
        assert_ne!(k.scoped("run_1"), k);
        assert_ne!(k.scoped("run_1"), k.scoped("run_2"));
        assert_eq!(k.scoped("run_1"), k.scoped("run_1"));
    }

    #[test]
    fn unknown_types_share_one_metric_label() {
        assert_eq!(type_label("whatsapp.statuses"), "whatsapp.statuses");
        assert_eq!(type_label("page.something_new"), "other");
    }

    #[test]
    fn platform_names_round_trip() {
        for p in Platform::ALL {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
        }
        assert_eq!(Platform::parse("myspace"), None);
    }
}
