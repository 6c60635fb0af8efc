//! What a raw-mode endpoint may receive of a Meta body.
//!
//! Meta batches the entries of several pages, Instagram accounts or phone numbers of one app
//! into one POST, and those may belong to different tenants. Raw mode forwards Meta's exact
//! bytes only when the endpoint may see every part of the body; otherwise it sends the
//! envelope with the parts it may see (WhatsApp: per change, since one business account's
//! numbers may belong to different tenants; Page and Instagram: per entry), re-serialised.
//! Such a body is no longer the one Meta signed: the request says so (`x-hookd-body:
//! filtered`), and its `X-Hub-Signature-256` is hookd's, over the bytes sent, as always in raw
//! mode.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The body to forward.
#[derive(Debug, PartialEq, Eq)]
pub enum RawBody {
    /// Meta's bytes, untouched.
    Original,
    /// Only the visible parts, re-serialised.
    Filtered(Vec<u8>),
    /// Nothing in the body is visible to the endpoint.
    Nothing,
}

impl RawBody {
    /// The value of the `x-hookd-body` header.
    pub fn label(&self) -> &'static str {
        match self {
            RawBody::Original => "original",
            RawBody::Filtered(_) | RawBody::Nothing => "filtered",
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
    #[serde(borrow)]
    entry: Vec<&'a RawValue>,
}

/// The keys of one JSON object, their values untouched.
type Fields<'a> = BTreeMap<String, &'a RawValue>;

#[derive(Deserialize)]
struct ChangeValue<'a> {
    #[serde(borrow, default)]
    metadata: Option<Metadata<'a>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow, default)]
    phone_number_id: Option<&'a RawValue>,
}

/// An id as text, whether Meta sent a string or a number (never through f64).
fn id_text(raw: &RawValue) -> Option<String> {
    let text = raw.get();
    if text.starts_with('"') {
        serde_json::from_str(text).ok()
    } else if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
        Some(text.to_string())
    } else {
        None
    }
}

/// The phone number a WhatsApp change is about, as the splitter takes it.
fn change_account(change: &Fields<'_>) -> Option<String> {
    let value: ChangeValue<'_> = serde_json::from_str(change.get("value")?.get()).ok()?;
    id_text(value.metadata?.phone_number_id?)
}

/// Keeps what `sees(account, entry_id)` admits of `body`. A body that does not parse as an
/// envelope (it was split once, so this is not expected) gives nothing rather than too much.
pub fn visible_body(body: &[u8], sees: impl Fn(&str, &str) -> bool) -> RawBody {
    let Ok(envelope) = serde_json::from_slice::<Envelope<'_>>(body) else {
        return RawBody::Nothing;
    };
    let whatsapp = envelope.object.get() == r#""whatsapp_business_account""#;
    let mut kept: Vec<String> = Vec::with_capacity(envelope.entry.len());
    let mut whole = true;
    for entry in &envelope.entry {
        let Ok(mut fields) = serde_json::from_str::<Fields<'_>>(entry.get()) else {
            whole = false;
            continue;
        };
        let entry_id = fields
            .get("id")
            .and_then(|v| id_text(v))
            .unwrap_or_default();
        let changes = fields
            .get("changes")
            .and_then(|c| serde_json::from_str::<Vec<&RawValue>>(c.get()).ok());
        match changes {
            Some(changes) if whatsapp => {
                let visible: Vec<&RawValue> = changes
                    .iter()
                    .copied()
                    .filter(|c| {
                        let account = serde_json::from_str::<Fields<'_>>(c.get())
                            .ok()
                            .and_then(|f| change_account(&f))
                            .unwrap_or_else(|| entry_id.clone());
                        sees(&account, &entry_id)
                    })
                    .collect();
                if visible.len() == changes.len() {
                    kept.push(entry.get().to_string());
                    continue;
                }
                whole = false;
                if visible.is_empty() {
                    continue;
                }
                let Ok(changes) = serde_json::to_string(&visible) else {
                    continue;
                };
                let Ok(changes) = RawValue::from_string(changes) else {
                    continue;
                };
                fields.insert("changes".into(), &changes);
                if let Ok(text) = serde_json::to_string(&fields) {
                    kept.push(text);
                }
            }
            _ if sees(&entry_id, &entry_id) => kept.push(entry.get().to_string()),
            _ => whole = false,
        }
    }
    if whole {
        return RawBody::Original;
    }
    if kept.is_empty() {
        return RawBody::Nothing;
    }
    let mut out = String::with_capacity(body.len());
    out.push_str(r#"{"object":"#);
    out.push_str(envelope.object.get());
    out.push_str(r#","entry":["#);
    out.push_str(&kept.join(","));
    out.push_str("]}");
    RawBody::Filtered(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PAGES: &str = r#"{"object":"page","entry":[{"id":"500000000000001","time":1,"messaging":[{"sender":{"id":"u1"},"recipient":{"id":"500000000000001"},"message":{"mid":"m1","text":"for A"}}]},{"id":500000000000002,"time":1,"messaging":[{"sender":{"id":"u2"},"recipient":{"id":"500000000000002"},"message":{"mid":"m2","text":"secret of B"}}]}]}"#;

    fn only(accounts: &'static [&'static str]) -> impl Fn(&str, &str) -> bool {
        move |account: &str, entry: &str| accounts.contains(&account) || accounts.contains(&entry)
    }

    fn filtered(r: RawBody) -> serde_json::Value {
        match r {
            RawBody::Filtered(b) => serde_json::from_slice(&b).expect("filtered body is JSON"),
            other => panic!("expected a filtered body, got {other:?}"),
        }
    }

    #[test]
    fn a_body_all_of_whose_entries_are_visible_goes_as_meta_sent_it() {
        let sees = only(&["500000000000001", "500000000000002"]);
        assert_eq!(visible_body(TWO_PAGES.as_bytes(), sees), RawBody::Original);
    }

    #[test]
    fn another_tenants_page_entry_is_left_out() {
        let body = filtered(visible_body(
            TWO_PAGES.as_bytes(),
            only(&["500000000000001"]),
        ));
        assert_eq!(body["object"], "page");
        assert_eq!(body["entry"].as_array().map(Vec::len), Some(1));
        assert_eq!(body["entry"][0]["id"], "500000000000001");
        assert!(!body.to_string().contains("secret of B"));
    }

    #[test]
    fn a_numeric_entry_id_is_matched_by_its_text() {
        let body = filtered(visible_body(
            TWO_PAGES.as_bytes(),
            only(&["500000000000002"]),
        ));
        assert_eq!(body["entry"][0]["messaging"][0]["message"]["mid"], "m2");
        assert!(!body.to_string().contains("for A"));
    }

    #[test]
    fn whatsapp_changes_of_other_numbers_are_left_out() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[
            {"field":"messages","value":{"metadata":{"phone_number_id":"PN_A"},"messages":[{"id":"wamid.A"}]}},
            {"field":"messages","value":{"metadata":{"phone_number_id":"PN_B"},"messages":[{"id":"wamid.B"}]}}]}]}"#;
        let out = filtered(visible_body(body.as_bytes(), only(&["PN_A"])));
        let changes = out["entry"][0]["changes"].as_array().expect("changes");
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0]["value"]["messages"][0]["id"], "wamid.A");
        assert_eq!(out["entry"][0]["id"], "WABA");
        // The business account covers both numbers.
        assert_eq!(
            visible_body(body.as_bytes(), only(&["WABA"])),
            RawBody::Original
        );
    }

    #[test]
    fn nothing_visible_gives_nothing() {
        assert_eq!(
            visible_body(TWO_PAGES.as_bytes(), only(&["other"])),
            RawBody::Nothing
        );
        assert_eq!(visible_body(b"{not json", only(&[])), RawBody::Nothing);
    }
}
