//! What an endpoint receives: the documented event JSON, and the id that stays the same across
//! every attempt so receivers can drop repeats.

use serde::Serialize;
use serde_json::value::RawValue;

/// One event as delivered. `data` is the event exactly as split from Meta's body.
#[derive(Debug, Clone, Serialize)]
pub struct OutboundEvent<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub platform: &'a str,
    pub source: &'a str,
    pub account_id: &'a str,
    /// When hookd received Meta's request, Unix ms.
    pub received_at: u64,
    /// When it happened according to Meta, Unix ms, when the body says.
    pub occurred_at: Option<u64>,
    pub data: &'a RawValue,
}

/// The body of a JSON-mode delivery.
pub fn event_body(event: &OutboundEvent<'_>) -> Vec<u8> {
    serde_json::to_vec(event).expect("an event of strings, numbers and JSON serialises")
}

/// `webhook-id`: stable for an event (or, in raw mode, a Meta request) across attempts,
/// replays and endpoints.
pub fn webhook_id(raw: bool, subject: &str) -> String {
    if raw {
        format!("raw_{subject}")
    } else {
        format!("evt_{subject}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_documented_fields_and_the_data_verbatim() {
        let data =
            RawValue::from_string(r#"{"id":"wamid.X","n":12345678901234567890}"#.into()).unwrap();
        let body = event_body(&OutboundEvent {
            id: "1-0",
            event_type: "whatsapp.messages",
            platform: "whatsapp",
            source: "main",
            account_id: "123",
            received_at: 5,
            occurred_at: None,
            data: &data,
        });
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            r#"{"id":"1-0","type":"whatsapp.messages","platform":"whatsapp","source":"main","account_id":"123","received_at":5,"occurred_at":null,"data":{"id":"wamid.X","n":12345678901234567890}}"#
        );
        assert_eq!(webhook_id(false, "1-0"), "evt_1-0");
    }
}
