//! Values as stored: compact binary records (postcard) for what is written per request and
//! per event, JSON for the catalogue (few writes, and readable with any redb tool).

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::model::delivery::{DeliveryKind, DeliveryStatus};
use crate::store::StoreError;

pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Protocol(format!("encoding {what}: {e}")))
}

pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes)
        .map_err(|e| StoreError::Protocol(format!("stored {what} unreadable: {e}")))
}

pub fn to_json<T: Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Protocol(format!("encoding {what}: {e}")))
}

pub fn from_json<T: DeserializeOwned>(what: &'static str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::Protocol(format!("stored {what} unreadable: {e}")))
}

/// An idempotency key's record: pending (no answer yet) or the answer to replay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdempotencyRec {
    pub expires_ms: u64,
    pub answer: Option<(u16, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalRec {
    pub source: String,
    pub received_at_ms: u64,
    pub request_id: String,
    pub signature: String,
    pub user_agent: String,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRec {
    pub event_type: String,
    pub platform: String,
    pub account_id: String,
    pub source: String,
    pub object: String,
    pub received_at_ms: u64,
    pub occurred_at_ms: Option<u64>,
    pub journal_id: String,
    pub request_id: String,
    pub endpoints: Vec<String>,
    /// Kept so that trimming the event also trims its tenant index entries.
    pub tenants: Vec<String>,
    pub data: String,
    /// Fields are only ever added last, so a record written before one existed still reads
    /// (see [`decode_event`]).
    pub identity: String,
    /// The event's conversation (see [`crate::meta::conversation`]).
    pub conversation: String,
}

/// An event as stored before it kept its identity.
#[derive(Debug, Clone, Deserialize)]
struct EventRecV1 {
    event_type: String,
    platform: String,
    account_id: String,
    source: String,
    object: String,
    received_at_ms: u64,
    occurred_at_ms: Option<u64>,
    journal_id: String,
    request_id: String,
    endpoints: Vec<String>,
    tenants: Vec<String>,
    data: String,
}

/// A stored event, in its current form or one before (each ends where a newer field begins).
/// An event from before conversations is in the conversation of its account.
pub fn decode_event(bytes: &[u8]) -> Result<EventRec, StoreError> {
    decode::<EventRec>("event", bytes).or_else(|current| {
        // Postcard writes a struct as its fields in order: a record from before conversations
        // is the one from before identities followed by its identity.
        let (v1, identity) = match decode::<(EventRecV1, String)>("event", bytes) {
            Ok(v2) => v2,
            Err(_) => match decode::<EventRecV1>("event", bytes) {
                Ok(v1) => (v1, String::new()),
                Err(_) => return Err(current),
            },
        };
        Ok(EventRec {
            conversation: v1.account_id.clone(),
            event_type: v1.event_type,
            platform: v1.platform,
            account_id: v1.account_id,
            source: v1.source,
            object: v1.object,
            received_at_ms: v1.received_at_ms,
            occurred_at_ms: v1.occurred_at_ms,
            journal_id: v1.journal_id,
            request_id: v1.request_id,
            endpoints: v1.endpoints,
            tenants: v1.tenants,
            data: v1.data,
            identity,
        })
    })
}

/// A delivery waiting in the queue. An event's data is not copied here: it is read from the
/// event when the delivery is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuedRec {
    pub kind: DeliveryKind,
    pub subject: String,
    pub endpoints: Vec<String>,
    pub attempt: u32,
    pub event_type: String,
    pub platform: String,
    pub account_id: String,
    pub source: String,
    pub received_at_ms: u64,
    pub occurred_at_ms: Option<u64>,
    pub request_id: String,
}

/// A delivery to one endpoint waiting for its due time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetryRec {
    pub kind: DeliveryKind,
    pub subject: String,
    pub endpoint_id: String,
    pub attempt: u32,
    pub event_type: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadRec {
    pub kind: DeliveryKind,
    pub subject: String,
    pub endpoint_id: String,
    pub tenant_id: String,
    pub event_type: String,
    pub attempts: u32,
    pub reason: String,
    pub dead_at: u64,
    pub received_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateRec {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_attempt_id: Option<String>,
    pub dead_id: Option<String>,
    /// Where the delivery waits in the retry table, so a manual retry can take it off.
    pub retry_key: Option<u128>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineRec {
    pub source: String,
    pub received_at: u64,
    pub journal_id: String,
    pub request_id: String,
    pub error: String,
    pub signature: String,
    #[serde(with = "serde_bytes")]
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RejectedRec {
    pub source: String,
    pub reason: String,
    pub received_at_ms: u64,
    pub request_id: String,
    pub remote_addr: String,
    pub signature: String,
    pub body_len: u64,
    pub body_prefix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as hookd stored it before events kept their identity.
    #[derive(Serialize)]
    struct WrittenBefore<'a> {
        event_type: &'a str,
        platform: &'a str,
        account_id: &'a str,
        source: &'a str,
        object: &'a str,
        received_at_ms: u64,
        occurred_at_ms: Option<u64>,
        journal_id: &'a str,
        request_id: &'a str,
        endpoints: Vec<String>,
        tenants: Vec<String>,
        data: &'a str,
    }

    /// A message event of account `PN` routed to `ep_1`, as written before identities.
    fn written_before() -> WrittenBefore<'static> {
        WrittenBefore {
            event_type: "whatsapp.messages",
            platform: "whatsapp",
            account_id: "PN",
            source: "main",
            object: "whatsapp_business_account",
            received_at_ms: 1,
            occurred_at_ms: Some(2),
            journal_id: "1-0",
            request_id: "r",
            endpoints: vec!["ep_1".into()],
            tenants: vec![],
            data: r#"{"a":1}"#,
        }
    }

    #[test]
    fn an_event_stored_before_identities_reads_with_none() {
        let old = written_before();
        let bytes = postcard::to_stdvec(&old).expect("encode");
        let read = decode_event(&bytes).expect("an old record reads");
        assert_eq!(read.data, r#"{"a":1}"#);
        assert_eq!(read.endpoints, ["ep_1"]);
        assert_eq!(read.identity, "");
        assert_eq!(read.conversation, "PN");
        let mut current = read.clone();
        current.identity = r#""sender":{"wa_id":"1"}"#.into();
        current.conversation = "PN:1".into();
        let bytes = encode("event", &current).expect("encode");
        let back = decode_event(&bytes).expect("reads");
        assert_eq!(
            (back.identity, back.conversation),
            (current.identity, current.conversation)
        );
    }

    #[test]
    fn an_event_stored_before_conversations_is_in_its_accounts() {
        // Postcard writes a struct as its fields in order: the record then its identity.
        let before = (written_before(), r#""sender":{"wa_id":"1"}"#);
        let bytes = postcard::to_stdvec(&before).expect("encode");
        let read = decode_event(&bytes).expect("a record from before conversations reads");
        assert_eq!(read.identity, r#""sender":{"wa_id":"1"}"#);
        assert_eq!(read.conversation, "PN");
    }
}
