//! WhatsApp Business: `entry[].changes[]`, where one change may carry many messages or
//! statuses. Each becomes its own event; every other field is one event per change.

use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::conversation::{self, StatusStep};
use super::envelope::{EntryCtx, id_text, millis, text_at};
use super::event::Platform;
use super::identity::whatsapp_identity;

/// Builds the dedup key parts of one list item; `None` when the item lacks its id.
type KeyParts = fn(&BorrowedValue<'_>) -> Option<Vec<String>>;

/// For each change field that batches items: the list inside `value`, the event type of its
/// items, and how an item is recognised when sent again.
fn lists_of(field: &str) -> &'static [(&'static str, &'static str, KeyParts)] {
    match field {
        "messages" => &[
            ("messages", "whatsapp.messages", message_key),
            ("statuses", "whatsapp.statuses", status_key),
        ],
        "smb_message_echoes" => &[("message_echoes", "whatsapp.smb_message_echoes", message_key)],
        "calls" => &[
            ("calls", "whatsapp.calls", call_key),
            ("statuses", "whatsapp.calls", call_status_key),
        ],
        "group_lifecycle_update" => &[("groups", "whatsapp.group_lifecycle_update", group_key)],
        "group_participants_update" => {
            &[("groups", "whatsapp.group_participants_update", group_key)]
        }
        "group_settings_update" => &[("groups", "whatsapp.group_settings_update", group_key)],
        "group_status_update" => &[("groups", "whatsapp.group_status_update", group_key)],
        _ => &[],
    }
}

/// A message (or echo) is its `wamid`.
fn message_key(item: &BorrowedValue<'_>) -> Option<Vec<String>> {
    Some(vec![id_text(item.get("id"))?])
}

/// A status is (message id, status, group participant): one message has one status of each
/// kind per recipient.
fn status_key(item: &BorrowedValue<'_>) -> Option<Vec<String>> {
    let participant = id_text(item.get("recipient_participant_id"))
        .or_else(|| id_text(item.get("recipient_participant_user_id")))
        .unwrap_or_default();
    Some(vec![
        id_text(item.get("id"))?,
        text_at(item, &["status"]),
        participant,
    ])
}

fn call_key(item: &BorrowedValue<'_>) -> Option<Vec<String>> {
    Some(vec![id_text(item.get("id"))?, text_at(item, &["event"])])
}

/// A group notice is (group, what happened, the API request it answers, when): a group is
/// created once, but its participants and settings change again and again.
fn group_key(item: &BorrowedValue<'_>) -> Option<Vec<String>> {
    Some(vec![
        id_text(item.get("group_id"))?,
        text_at(item, &["type"]),
        text_at(item, &["request_id"]),
        text_at(item, &["timestamp"]),
    ])
}

fn call_status_key(item: &BorrowedValue<'_>) -> Option<Vec<String>> {
    Some(vec![
        id_text(item.get("id"))?,
        "status".to_string(),
        text_at(item, &["status"]),
    ])
}

pub(crate) fn split_entry(entry: &BorrowedValue<'_>, ctx: &mut EntryCtx<'_>) {
    let Some(changes) = entry.get_array("changes") else {
        return;
    };
    for change in changes.iter() {
        let field = change.get_str("field").unwrap_or("unknown");
        let Some(value) = change.get("value") else {
            let account = ctx.entry_id.clone();
            ctx.push_hashed(
                Platform::WhatsApp,
                format!("whatsapp.{field}"),
                &account,
                change,
                None,
            );
            continue;
        };
        // The phone number is the account a tenant owns; account-level fields (templates,
        // account updates) have no metadata and belong to the WABA.
        let account = value
            .get("metadata")
            .and_then(|m| id_text(m.get("phone_number_id")))
            .unwrap_or_else(|| ctx.entry_id.clone());

        let lists = lists_of(field);
        let mut emitted = false;
        for (list_key, event_type, key_parts) in lists {
            let Some(items) = value.get_array(*list_key) else {
                continue;
            };
            for item in items.iter() {
                let data = single_item_value(value, list_key, item, lists);
                let occurred = millis(item.get("timestamp"));
                match key_parts(item) {
                    Some(parts) => {
                        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                        ctx.push(
                            Platform::WhatsApp,
                            event_type.to_string(),
                            &account,
                            occurred,
                            &parts,
                            data,
                        );
                    }
                    None => ctx.push_hashed(
                        Platform::WhatsApp,
                        event_type.to_string(),
                        &account,
                        item,
                        occurred,
                    ),
                }
                if let Some(event) = ctx.out.last_mut() {
                    let (identity, user) = whatsapp_identity(list_key, value, item);
                    event.identity = identity;
                    event.conversation = conversation::key(&account, user.as_deref());
                    if *event_type == "whatsapp.statuses" {
                        event.status_step =
                            StatusStep::of(item.get_str("id"), item.get_str("status"));
                    }
                }
                emitted = true;
            }
        }
        if !emitted {
            let event_type = if field == "messages" && value.get("errors").is_some() {
                "whatsapp.errors".to_string()
            } else {
                format!("whatsapp.{field}")
            };
            ctx.push_hashed_with_trigger_time(Platform::WhatsApp, event_type, &account, value);
        }
    }
}

/// `value` with its list narrowed to `item` and the other lists of the field left out, so each
/// event keeps the shape receivers know (metadata, contacts, errors) around one item.
fn single_item_value(
    value: &BorrowedValue<'_>,
    list_key: &str,
    item: &BorrowedValue<'_>,
    lists: &[(&str, &str, KeyParts)],
) -> String {
    let Some(map) = value.as_object() else {
        return item.encode();
    };
    let mut out = BorrowedValue::object_with_capacity(map.len());
    if let Some(out_map) = out.as_object_mut() {
        for (k, v) in map.iter() {
            if k == list_key {
                out_map.insert(k.clone(), BorrowedValue::from(vec![item.clone()]));
            } else if !lists.iter().any(|(other, _, _)| k == other) {
                out_map.insert(k.clone(), v.clone());
            }
        }
    }
    out.encode()
}

#[cfg(test)]
mod tests {
    use crate::meta::envelope::split;

    fn split_str(s: &str) -> Vec<crate::meta::Event> {
        split(&mut s.as_bytes().to_vec()).expect("split").events
    }

    const TWO_MESSAGES_ONE_STATUS: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"1"}],"messages":[{"id":"wamid.A","timestamp":"1700000000","type":"text"},{"id":"wamid.B","timestamp":"1700000001","type":"text"}],"statuses":[{"id":"wamid.C","status":"read","timestamp":"1700000002"}]}}]}]}"#;

    #[test]
    fn messages_and_statuses_of_one_user_share_a_conversation_and_statuses_know_their_step() {
        let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN"},"contacts":[{"wa_id":"1555"}],"messages":[{"id":"wamid.A","from":"1555","type":"text"}],"statuses":[{"id":"wamid.B","status":"delivered","recipient_id":"1555"},{"id":"wamid.C","status":"failed","recipient_id":"1666"}]}}]}]}"#;
        let events = split_str(body);
        let conversations: Vec<_> = events.iter().map(|e| e.conversation.as_str()).collect();
        assert_eq!(conversations, ["PN:1555", "PN:1555", "PN:1666"]);
        assert_eq!(events[0].status_step, None);
        let step = events[1].status_step.as_ref().expect("a status has a step");
        assert_eq!((step.message_id.as_str(), step.rank), ("wamid.B", 2));
        assert_eq!(
            events[2].status_step, None,
            "failed has no place in the order"
        );
    }

    #[test]
    fn each_message_and_status_is_its_own_event() {
        let events = split_str(TWO_MESSAGES_ONE_STATUS);
        let types: Vec<_> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(
            types,
            [
                "whatsapp.messages",
                "whatsapp.messages",
                "whatsapp.statuses"
            ]
        );
        assert!(events.iter().all(|e| e.account_id == "PN"));
        assert_eq!(events[1].occurred_at_ms, Some(1_700_000_001_000));
    }

    #[test]
    fn an_event_keeps_the_context_around_its_single_item() {
        let events = split_str(TWO_MESSAGES_ONE_STATUS);
        let data: serde_json::Value = serde_json::from_str(&events[1].data).expect("json");
        assert_eq!(data["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(data["messages"][0]["id"], "wamid.B");
        assert_eq!(data["metadata"]["phone_number_id"], "PN");
        assert!(data.get("statuses").is_none());
    }

    #[test]
    fn a_message_is_recognised_by_its_wamid_alone() {
        let a = split_str(TWO_MESSAGES_ONE_STATUS);
        let rebatched = TWO_MESSAGES_ONE_STATUS.replace(r#""timestamp":"1700000000","#, "");
        let b = split_str(&rebatched);
        assert_eq!(a[0].dedup_key, b[0].dedup_key);
    }

    #[test]
    fn statuses_of_one_message_differ_by_status() {
        let read = split_str(TWO_MESSAGES_ONE_STATUS);
        let delivered = split_str(&TWO_MESSAGES_ONE_STATUS.replace("\"read\"", "\"delivered\""));
        assert_ne!(read[2].dedup_key, delivered[2].dedup_key);
    }

    #[test]
    fn value_level_errors_become_an_errors_event() {
        let events = split_str(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"PN"},"errors":[{"code":131000}]}}]}]}"#,
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "whatsapp.errors");
    }

    #[test]
    fn account_fields_belong_to_the_business_account() {
        let events = split_str(
            r#"{"object":"whatsapp_business_account","entry":[{"id":"WABA","time":1700000000,"changes":[{"field":"account_update","value":{"event":"X"}}]}]}"#,
        );
        assert_eq!(events[0].event_type, "whatsapp.account_update");
        assert_eq!(events[0].account_id, "WABA");
        assert_eq!(events[0].occurred_at_ms, Some(1_700_000_000_000));
    }

    #[test]
    fn a_notice_resent_is_one_event_and_the_same_notice_triggered_later_is_another() {
        let body = |time: u64| {
            format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"WABA","time":{time},"changes":[{{"field":"message_template_status_update","value":{{"event":"APPROVED","message_template_id":7}}}}]}}]}}"#
            )
        };
        let first = split_str(&body(1_700_000_000));
        assert_eq!(
            first[0].dedup_key,
            split_str(&body(1_700_000_000))[0].dedup_key
        );
        assert_ne!(
            first[0].dedup_key,
            split_str(&body(1_700_000_900))[0].dedup_key
        );
    }
}
