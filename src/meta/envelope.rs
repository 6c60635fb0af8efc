//! Splits a Meta webhook body (`{"object": …, "entry": […]}`) into single events.
//!
//! The platform modules decide what one event is; this one walks the envelope and holds the
//! helpers they share. Nothing here rejects what it does not know: unknown objects, fields and
//! messaging kinds all become events.

use simd_json::prelude::*;
use simd_json::{BorrowedValue, StaticNode};

use super::event::{Event, Platform};
use super::{changes, messaging, whatsapp};

/// Why a signed body could not be split. Such a body is quarantined, never dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body is not a Meta webhook envelope: {0}")]
    NotAnEnvelope(&'static str),
}

/// The events of one body.
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// The envelope's `object`, as Meta sent it.
    pub object: String,
    pub events: Vec<Event>,
}

/// The ids of the body's envelope entries (the accounts it speaks of), in order, as the
/// events split from it name them (`Event::entry_id`, "" for an entry without one); `None`
/// for a body that cannot be split.
pub fn entry_ids(body: &[u8]) -> Option<Vec<String>> {
    let mut scratch = body.to_vec();
    let root = simd_json::to_borrowed_value(&mut scratch).ok()?;
    root.get_str("object")?;
    let entries = root.get_array("entry")?;
    Some(
        entries
            .iter()
            .map(|e| id_text(e.get("id")).unwrap_or_default())
            .collect(),
    )
}

/// Splits `body` into events. simd-json parses in place, so `body` is scrambled afterwards.
pub fn split(body: &mut [u8]) -> Result<Split, SplitError> {
    let root =
        simd_json::to_borrowed_value(body).map_err(|e| SplitError::InvalidJson(e.to_string()))?;
    let object = root
        .get_str("object")
        .ok_or(SplitError::NotAnEnvelope("no \"object\" string"))?;
    let entries = root
        .get_array("entry")
        .ok_or(SplitError::NotAnEnvelope("no \"entry\" array"))?;

    let mut events = Vec::new();
    for entry in entries.iter() {
        let mut ctx = EntryCtx {
            entry_id: id_text(entry.get("id")).unwrap_or_default(),
            entry_time_ms: millis(entry.get("time")),
            out: &mut events,
        };
        let before = ctx.out.len();
        match object {
            "whatsapp_business_account" => whatsapp::split_entry(entry, &mut ctx),
            "page" => {
                messaging::split_entry(entry, Platform::Messenger, &mut ctx);
                changes::split_entry(entry, Platform::Page, &mut ctx);
            }
            "instagram" => {
                messaging::split_entry(entry, Platform::Instagram, &mut ctx);
                changes::split_entry(entry, Platform::Instagram, &mut ctx);
            }
            _ => {
                messaging::split_entry(entry, Platform::Other, &mut ctx);
                changes::split_entry(entry, Platform::Other, &mut ctx);
            }
        }
        if ctx.out.len() == before {
            // An entry without anything hookd recognises is still kept whole.
            let platform = platform_of_object(object);
            let account = ctx.entry_id.clone();
            ctx.push_hashed(
                platform,
                format!("{}.entry", platform.as_str()),
                &account,
                entry,
                None,
            );
        }
    }
    Ok(Split {
        object: object.to_string(),
        events,
    })
}

fn platform_of_object(object: &str) -> Platform {
    match object {
        "whatsapp_business_account" => Platform::WhatsApp,
        "page" => Platform::Page,
        "instagram" => Platform::Instagram,
        _ => Platform::Other,
    }
}

/// What the platform modules need from the entry being split, and where events go.
pub(crate) struct EntryCtx<'o> {
    /// `entry.id`: the page, Instagram account or WhatsApp Business Account.
    pub entry_id: String,
    pub entry_time_ms: Option<u64>,
    pub out: &'o mut Vec<Event>,
}

impl EntryCtx<'_> {
    /// Pushes an event whose dedup key is built from Meta's ids.
    pub fn push(
        &mut self,
        platform: Platform,
        event_type: String,
        account_id: &str,
        occurred_at_ms: Option<u64>,
        key_parts: &[&str],
        data: String,
    ) {
        let dedup_key = super::event::DedupKey::new(&event_type, account_id, key_parts);
        self.out.push(Event {
            platform,
            event_type,
            account_id: account_id.to_string(),
            entry_id: self.entry_id.clone(),
            occurred_at_ms: occurred_at_ms.or(self.entry_time_ms),
            dedup_key,
            data,
            identity: String::new(),
            conversation: account_id.to_string(),
            status_step: None,
        });
    }

    /// Pushes `value` as an event whose dedup key is its canonical hash (it has no id).
    pub fn push_hashed(
        &mut self,
        platform: Platform,
        event_type: String,
        account_id: &str,
        value: &BorrowedValue<'_>,
        occurred_at_ms: Option<u64>,
    ) {
        let hash = super::canonical::canonical_hash(value);
        self.push(
            platform,
            event_type,
            account_id,
            occurred_at_ms,
            &["#", &hash],
            value.encode(),
        );
    }

    /// [`Self::push_hashed`] for a notice whose content can recur (a template approved, paused,
    /// approved again): the entry's `time`, Meta's trigger time, joins the key, so a resend of
    /// one notice is a duplicate and a later notice with the same content is not.
    pub fn push_hashed_with_trigger_time(
        &mut self,
        platform: Platform,
        event_type: String,
        account_id: &str,
        value: &BorrowedValue<'_>,
    ) {
        let hash = super::canonical::canonical_hash(value);
        let trigger = self
            .entry_time_ms
            .map(|t| t.to_string())
            .unwrap_or_default();
        self.push(
            platform,
            event_type,
            account_id,
            None,
            &["#", &hash, &trigger],
            value.encode(),
        );
    }
}

/// An id as text, whether Meta sent it as a string or a number. Integers go through u64/i64
/// only (simd-json refuses integers that overflow them), never through f64.
pub(crate) fn id_text(v: Option<&BorrowedValue<'_>>) -> Option<String> {
    id_str(v).map(std::borrow::Cow::into_owned)
}

/// [`id_text`] without a copy when Meta sent a string.
pub(crate) fn id_str<'v>(v: Option<&'v BorrowedValue<'_>>) -> Option<std::borrow::Cow<'v, str>> {
    use std::borrow::Cow;
    match v? {
        BorrowedValue::String(s) => Some(Cow::Borrowed(s.as_ref())),
        BorrowedValue::Static(StaticNode::U64(n)) => Some(Cow::Owned(n.to_string())),
        BorrowedValue::Static(StaticNode::I64(n)) => Some(Cow::Owned(n.to_string())),
        BorrowedValue::Static(StaticNode::Bool(b)) => Some(Cow::Owned(b.to_string())),
        BorrowedValue::Static(StaticNode::F64(x)) => Some(Cow::Owned(x.to_string())),
        _ => None,
    }
}

/// The text at `path` below `v`, or "" (a missing part still takes its place in a key).
pub(crate) fn text_at(v: &BorrowedValue<'_>, path: &[&str]) -> String {
    let mut cur = Some(v);
    for key in path {
        cur = cur.and_then(|c| c.get(*key));
    }
    id_text(cur).unwrap_or_default()
}

/// A Meta time (Unix seconds or milliseconds, number or numeric string) in milliseconds.
pub(crate) fn millis(v: Option<&BorrowedValue<'_>>) -> Option<u64> {
    let n = match v? {
        BorrowedValue::String(s) => s.parse::<u64>().ok()?,
        BorrowedValue::Static(StaticNode::U64(n)) => *n,
        BorrowedValue::Static(StaticNode::I64(n)) => u64::try_from(*n).ok()?,
        _ => return None,
    };
    // Seconds stay below 10^11 until the year 5138; milliseconds are above it since 1973.
    Some(if n < 100_000_000_000 { n * 1000 } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_str(s: &str) -> Result<Split, SplitError> {
        split(&mut s.as_bytes().to_vec())
    }

    #[test]
    fn invalid_json_is_an_error_not_a_panic() {
        assert!(matches!(
            split_str("{\"object\":"),
            Err(SplitError::InvalidJson(_))
        ));
    }

    #[test]
    fn json_without_entries_is_not_an_envelope() {
        assert_eq!(
            split_str(r#"{"object":"page"}"#),
            Err(SplitError::NotAnEnvelope("no \"entry\" array"))
        );
        assert!(matches!(
            split_str("[1,2]"),
            Err(SplitError::NotAnEnvelope(_))
        ));
    }

    #[test]
    fn an_unknown_object_is_kept_as_events() {
        let s = split_str(
            r#"{"object":"user","entry":[{"id":"1","time":1,"changes":[{"field":"email","value":{"x":1}}]}]}"#,
        )
        .expect("split");
        assert_eq!(s.object, "user");
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].event_type, "other.email");
    }

    #[test]
    fn an_entry_with_nothing_known_is_kept_whole() {
        let s = split_str(r#"{"object":"page","entry":[{"id":"7","time":1,"weird":[1]}]}"#)
            .expect("split");
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].event_type, "page.entry");
        assert_eq!(s.events[0].account_id, "7");
    }

    #[test]
    fn numeric_ids_keep_every_digit() {
        let mut body = br#"{"id": 18446744073709551615}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut body).expect("json");
        assert_eq!(
            id_text(v.get("id")).as_deref(),
            Some("18446744073709551615")
        );
    }

    #[test]
    fn integers_too_large_for_64_bits_are_refused_not_rounded() {
        assert!(matches!(
            split_str(r#"{"object":"page","entry":[{"id":123456789012345678901234}]}"#),
            Err(SplitError::InvalidJson(_))
        ));
    }

    #[test]
    fn seconds_and_milliseconds_both_become_milliseconds() {
        let mut body = br#"{"s":"1749416383","ms":1458668856451}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut body).expect("json");
        assert_eq!(millis(v.get("s")), Some(1_749_416_383_000));
        assert_eq!(millis(v.get("ms")), Some(1_458_668_856_451));
    }
}
