//! What an endpoint receives: the documented event JSON, and the id that stays the same across
//! every attempt so receivers can drop repeats.

/// One event as delivered. `data` is the event exactly as split from Meta's body (JSON that
/// hookd itself wrote, so it is copied as it is rather than parsed again).
#[derive(Debug, Clone)]
pub struct OutboundEvent<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub platform: &'a str,
    pub source: &'a str,
    pub account_id: &'a str,
    /// When hookd received Meta's request, Unix ms.
    pub received_at: u64,
    /// When it happened according to Meta, Unix ms, when the body says.
    pub occurred_at: Option<u64>,
    pub data: &'a str,
    /// `"sender":{…}` or `"recipient":{…}`, or empty.
    pub identity: &'a str,
    /// A test suite's sample or an endpoint's test send: the body says `"test":true`.
    pub test: bool,
}

/// The body of a JSON-mode delivery:
/// `{"id","type","platform","source","account_id","received_at","occurred_at"[,"sender"|"recipient"][,"test":true],"data"}`.
pub fn event_body(e: &OutboundEvent<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(e.data.len() + 192);
    let strings = [
        ("{\"id\":", e.id),
        (",\"type\":", e.event_type),
        (",\"platform\":", e.platform),
        (",\"source\":", e.source),
        (",\"account_id\":", e.account_id),
    ];
    for (key, value) in strings {
        out.extend_from_slice(key.as_bytes());
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, value);
    }
    out.extend_from_slice(format!(",\"received_at\":{}", e.received_at).as_bytes());
    match e.occurred_at {
        Some(t) => out.extend_from_slice(format!(",\"occurred_at\":{t}").as_bytes()),
        None => out.extend_from_slice(b",\"occurred_at\":null"),
    }
    if !e.identity.is_empty() {
        out.push(b',');
        out.extend_from_slice(e.identity.as_bytes());
    }
    if e.test {
        out.extend_from_slice(b",\"test\":true");
    }
    out.extend_from_slice(b",\"data\":");
    out.extend_from_slice(e.data.as_bytes());
    out.push(b'}');
    out
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

/// The event a `webhook-id` names, so that receivers can use the id they were sent; any
/// other id is returned as it is.
pub fn event_id_of(id: &str) -> &str {
    id.strip_prefix("evt_").unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_the_documented_fields_and_the_data_verbatim() {
        let data = r#"{"id":"wamid.X","n":12345678901234567890}"#;
        let body = event_body(&OutboundEvent {
            id: "1-0",
            event_type: "whatsapp.messages",
            platform: "whatsapp",
            source: "ma\"in",
            account_id: "123",
            received_at: 5,
            occurred_at: None,
            data,
            identity: "",
            test: false,
        });
        let text = String::from_utf8(body).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
        assert_eq!(
            text,
            r#"{"id":"1-0","type":"whatsapp.messages","platform":"whatsapp","source":"ma\"in","account_id":"123","received_at":5,"occurred_at":null,"data":{"id":"wamid.X","n":12345678901234567890}}"#
        );
        assert_eq!(webhook_id(false, "1-0"), "evt_1-0");
    }

    #[test]
    fn the_user_an_event_is_about_sits_beside_its_data() {
        let body = event_body(&OutboundEvent {
            id: "1-0",
            event_type: "whatsapp.messages",
            platform: "whatsapp",
            source: "main",
            account_id: "123",
            received_at: 5,
            occurred_at: Some(6),
            data: "{}",
            identity: r#""sender":{"user_id":"US.1"}"#,
            test: false,
        });
        let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(v["sender"], serde_json::json!({"user_id": "US.1"}));
        assert_eq!(v["data"], serde_json::json!({}));
        assert!(v.get("test").is_none(), "only a test says so");
    }

    #[test]
    fn a_test_event_says_so_in_its_envelope() {
        let body = event_body(&OutboundEvent {
            id: "1-0",
            event_type: "page.feed",
            platform: "page",
            source: "main",
            account_id: "1",
            received_at: 5,
            occurred_at: None,
            data: "{}",
            identity: "",
            test: true,
        });
        let v: serde_json::Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(v["test"], true);
    }

    #[test]
    fn a_webhook_id_leads_back_to_its_event() {
        assert_eq!(event_id_of(&webhook_id(false, "17-3")), "17-3");
        assert_eq!(event_id_of("17-3"), "17-3");
    }
}
