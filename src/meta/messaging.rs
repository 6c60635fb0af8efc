//! Page (Messenger) and Instagram messaging: `entry[].messaging[]` and `entry[].standby[]`.
//! Each item is one event; what it holds (a message, a postback, a read…) names its type.

use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::conversation;
use super::envelope::{EntryCtx, millis, text_at};
use super::event::Platform;
use super::identity::{messaging_identity, messaging_user};

/// The webhook field an item belongs to, and the parts of its dedup key (`None`: no id, so
/// the item's canonical hash is used).
fn classify(item: &BorrowedValue<'_>, platform: Platform) -> (String, Option<Vec<String>>) {
    let sender = text_at(item, &["sender", "id"]);
    if let Some(message) = item.get("message") {
        let echo = message.get_bool("is_echo").unwrap_or(false);
        let field = if echo { "message_echoes" } else { "messages" };
        let mid = text_at(message, &["mid"]);
        let parts = (!mid.is_empty()).then(|| vec![mid, echo.to_string()]);
        return (field.to_string(), parts);
    }
    if let Some(postback) = item.get("postback") {
        let mid = text_at(postback, &["mid"]);
        return (
            "messaging_postbacks".to_string(),
            (!mid.is_empty()).then(|| vec![mid]),
        );
    }
    if let Some(reaction) = item.get("reaction") {
        let parts = vec![
            text_at(reaction, &["mid"]),
            sender,
            text_at(reaction, &["action"]),
            text_at(reaction, &["emoji"]),
        ];
        return ("message_reactions".to_string(), Some(parts));
    }
    if let Some(delivery) = item.get("delivery") {
        let parts = vec![sender, text_at(delivery, &["watermark"])];
        return ("message_deliveries".to_string(), Some(parts));
    }
    if let Some(read) = item.get("read") {
        return match platform {
            // Instagram marks one message seen; Messenger reads up to a watermark.
            Platform::Instagram => {
                let parts = vec![text_at(read, &["mid"]), sender];
                ("messaging_seen".to_string(), Some(parts))
            }
            _ => {
                let parts = vec![sender, text_at(read, &["watermark"])];
                ("message_reads".to_string(), Some(parts))
            }
        };
    }
    if let Some(edit) = item.get("message_edit") {
        let parts = vec![text_at(edit, &["mid"]), text_at(edit, &["num_edit"])];
        // Instagram names the field in the singular, Messenger in the plural.
        let field = match platform {
            Platform::Instagram => "message_edit",
            _ => "message_edits",
        };
        return (field.to_string(), Some(parts));
    }
    let instagram = platform == Platform::Instagram;
    let field = match first_kind_key(item) {
        Some("optin") => "messaging_optins",
        Some("optout") => "messaging_optouts",
        Some("referral") if instagram => "messaging_referral",
        Some("referral") => "messaging_referrals",
        Some("account_linking") => "messaging_account_linking",
        Some("pass_thread_control" | "take_thread_control" | "request_thread_control") => {
            if instagram {
                "messaging_handover"
            } else {
                "messaging_handovers"
            }
        }
        Some("policy-enforcement") => "messaging_policy_enforcement",
        Some(other) => other,
        None => "messaging",
    };
    (field.to_string(), None)
}

/// The key that says what a messaging item is (everything but its addressing and time).
fn first_kind_key<'v>(item: &'v BorrowedValue<'_>) -> Option<&'v str> {
    let map = item.as_object()?;
    let mut keys: Vec<&str> = map
        .keys()
        .map(|k| k.as_ref())
        .filter(|k| !matches!(*k, "sender" | "recipient" | "timestamp"))
        .collect();
    keys.sort_unstable();
    keys.first().copied()
}

pub(crate) fn split_entry(entry: &BorrowedValue<'_>, platform: Platform, ctx: &mut EntryCtx<'_>) {
    let account = ctx.entry_id.clone();
    let prefix = platform.as_str();
    for (list, standby) in [("messaging", false), ("standby", true)] {
        let Some(items) = entry.get_array(list) else {
            continue;
        };
        for item in items.iter() {
            let (field, parts) = classify(item, platform);
            let occurred = millis(item.get("timestamp"));
            // A standby item is the same event seen by a secondary receiver: its own type and
            // its own key space.
            let (event_type, kind) = if standby {
                (
                    format!("{prefix}.standby"),
                    format!("{prefix}.standby.{field}"),
                )
            } else {
                let t = format!("{prefix}.{field}");
                (t.clone(), t)
            };
            match parts {
                Some(parts) => {
                    let mut refs: Vec<&str> = vec![&kind];
                    refs.extend(parts.iter().map(String::as_str));
                    ctx.push(
                        platform,
                        event_type,
                        &account,
                        occurred,
                        &refs,
                        item.encode(),
                    );
                }
                None => ctx.push_hashed(platform, event_type, &account, item, occurred),
            }
            if let Some(event) = ctx.out.last_mut() {
                event.identity = messaging_identity(item);
                event.conversation =
                    conversation::key(&account, messaging_user(item, &account).as_deref());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::meta::envelope::split;

    fn types(s: &str) -> Vec<String> {
        split(&mut s.as_bytes().to_vec())
            .expect("split")
            .events
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }

    fn page(items: &str) -> String {
        format!(r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{items}]}}]}}"#)
    }

    #[test]
    fn messaging_items_are_typed_by_what_they_hold() {
        let body = page(
            r#"{"sender":{"id":"U"},"message":{"mid":"m1","text":"hi"}},
               {"sender":{"id":"P"},"message":{"mid":"m2","is_echo":true}},
               {"sender":{"id":"U"},"postback":{"mid":"m3","payload":"X"}},
               {"sender":{"id":"U"},"delivery":{"watermark":5}},
               {"sender":{"id":"U"},"read":{"watermark":5}},
               {"sender":{"id":"U"},"reaction":{"mid":"m1","action":"react","emoji":"x"}},
               {"sender":{"id":"U"},"optin":{"ref":"r"}},
               {"sender":{"id":"U"},"game_play":{"game_id":"g"}}"#,
        );
        assert_eq!(
            types(&body),
            [
                "messenger.messages",
                "messenger.message_echoes",
                "messenger.messaging_postbacks",
                "messenger.message_deliveries",
                "messenger.message_reads",
                "messenger.message_reactions",
                "messenger.messaging_optins",
                "messenger.game_play",
            ]
        );
    }

    #[test]
    fn a_message_and_its_echo_are_different_events() {
        let body = page(
            r#"{"sender":{"id":"U"},"message":{"mid":"m1"}},{"sender":{"id":"U"},"message":{"mid":"m1","is_echo":true}}"#,
        );
        let events = split(&mut body.into_bytes()).expect("split").events;
        assert_ne!(events[0].dedup_key, events[1].dedup_key);
    }

    #[test]
    fn instagram_reads_are_seen_events() {
        let body = r#"{"object":"instagram","entry":[{"id":"IG","time":1,"messaging":[{"sender":{"id":"U"},"read":{"mid":"m"}}]}]}"#;
        assert_eq!(types(body), ["instagram.messaging_seen"]);
    }

    #[test]
    fn standby_items_are_standby_events() {
        let body = r#"{"object":"page","entry":[{"id":"P","time":1,"standby":[{"sender":{"id":"U"},"message":{"mid":"m1"}}]}]}"#;
        assert_eq!(types(body), ["messenger.standby"]);
    }
}
