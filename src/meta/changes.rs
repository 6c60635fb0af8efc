//! Page and Instagram changes (`entry[].changes[]`: feed, leadgen, comments, mentions…): one
//! event per change, typed `platform.field`.

use simd_json::BorrowedValue;
use simd_json::prelude::*;

use super::envelope::{EntryCtx, millis, text_at};
use super::event::Platform;

/// The dedup key parts of a change, from Meta's ids; `None` for fields without one.
fn key_parts(platform: Platform, field: &str, value: &BorrowedValue<'_>) -> Option<Vec<String>> {
    match (platform, field) {
        (Platform::Page, "feed") => {
            let target = Some(text_at(value, &["comment_id"]))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| text_at(value, &["post_id"]));
            Some(vec![
                text_at(value, &["item"]),
                text_at(value, &["verb"]),
                target,
                text_at(value, &["from", "id"]),
                text_at(value, &["reaction_type"]),
                text_at(value, &["created_time"]),
            ])
        }
        (Platform::Page, "leadgen") => non_empty(text_at(value, &["leadgen_id"])),
        (Platform::Page, "mention") => {
            let post = text_at(value, &["post_id"]);
            let comment = text_at(value, &["comment_id"]);
            (!post.is_empty() || !comment.is_empty())
                .then(|| vec![post, comment, text_at(value, &["verb"])])
        }
        (Platform::Page, "ratings") => {
            let review = Some(text_at(value, &["review_id"]))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| text_at(value, &["open_graph_story_id"]));
            (!review.is_empty()).then(|| vec![review, text_at(value, &["verb"])])
        }
        (Platform::Page, "live_videos") => {
            let id = text_at(value, &["id"]);
            (!id.is_empty()).then(|| vec![id, text_at(value, &["status"])])
        }
        (Platform::Instagram, "comments" | "live_comments") => non_empty(text_at(value, &["id"])),
        (Platform::Instagram, "mentions") => {
            let media = text_at(value, &["media_id"]);
            (!media.is_empty()).then(|| vec![media, text_at(value, &["comment_id"])])
        }
        // Meta sends a story's insights once, when the story expires.
        (Platform::Instagram, "story_insights") => non_empty(text_at(value, &["media_id"])),
        _ => None,
    }
}

fn non_empty(id: String) -> Option<Vec<String>> {
    (!id.is_empty()).then(|| vec![id])
}

pub(crate) fn split_entry(entry: &BorrowedValue<'_>, platform: Platform, ctx: &mut EntryCtx<'_>) {
    let Some(changes) = entry.get_array("changes") else {
        return;
    };
    let account = ctx.entry_id.clone();
    for change in changes.iter() {
        let field = change.get_str("field").unwrap_or("unknown");
        let event_type = format!("{}.{field}", platform.as_str());
        let Some(value) = change.get("value") else {
            ctx.push_hashed(platform, event_type, &account, change, None);
            continue;
        };
        let occurred = millis(value.get("created_time"));
        match key_parts(platform, field, value) {
            Some(parts) => {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                ctx.push(
                    platform,
                    event_type,
                    &account,
                    occurred,
                    &parts,
                    value.encode(),
                );
            }
            None => ctx.push_hashed(platform, event_type, &account, value, occurred),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::meta::envelope::split;

    #[test]
    fn leadgen_ids_sent_as_numbers_keep_their_text() {
        let body = r#"{"object":"page","entry":[{"id":153125381133,"time":1438292065,"changes":[{"field":"leadgen","value":{"leadgen_id":123123123123,"page_id":123123123}}]}]}"#;
        let events = split(&mut body.as_bytes().to_vec()).expect("split").events;
        assert_eq!(events[0].event_type, "page.leadgen");
        assert_eq!(events[0].account_id, "153125381133");
        assert!(events[0].dedup_key.as_str().ends_with("123123123123"));
        assert!(events[0].data.contains("123123123123"));
    }

    #[test]
    fn two_reactions_by_different_people_are_different_events() {
        let body = |who: &str| {
            format!(
                r#"{{"object":"page","entry":[{{"id":"P","time":1,"changes":[{{"field":"feed","value":{{"item":"reaction","verb":"add","post_id":"P_1","from":{{"id":"{who}"}},"reaction_type":"like","created_time":5}}}}]}}]}}"#
            )
        };
        let a = split(&mut body("A").into_bytes()).expect("split").events;
        let b = split(&mut body("B").into_bytes()).expect("split").events;
        assert_ne!(a[0].dedup_key, b[0].dedup_key);
    }

    #[test]
    fn fields_without_ids_are_recognised_by_their_content() {
        let body = |spacing: &str, reach: u32| {
            format!(
                r#"{{"object":"instagram","entry":[{{"id":"IG","time":1,"changes":[{{"field":"some_new_field","value":{{"media_id":"M",{spacing}"reach":{reach}}}}}]}}]}}"#
            )
        };
        let a = split(&mut body("", 17).into_bytes()).expect("split").events;
        let b = split(&mut body("  ", 17).into_bytes())
            .expect("split")
            .events;
        let c = split(&mut body("", 18).into_bytes()).expect("split").events;
        assert_eq!(a[0].dedup_key, b[0].dedup_key);
        assert_ne!(a[0].dedup_key, c[0].dedup_key);
        assert_eq!(a[0].event_type, "instagram.some_new_field");
    }

    #[test]
    fn story_insights_are_recognised_by_their_story_whatever_the_metrics() {
        let body = |reach: u32| {
            format!(
                r#"{{"object":"instagram","entry":[{{"id":"IG","time":1,"changes":[{{"field":"story_insights","value":{{"media_id":"M","reach":{reach}}}}}]}}]}}"#
            )
        };
        let a = split(&mut body(17).into_bytes()).expect("split").events;
        let b = split(&mut body(18).into_bytes()).expect("split").events;
        assert_eq!(a[0].dedup_key, b[0].dedup_key);
    }

    #[test]
    fn each_feed_item_kind_is_its_own_event() {
        let kinds = [
            "status", "post", "photo", "video", "share", "comment", "reaction", "like",
        ];
        let keys: std::collections::HashSet<String> = kinds
            .iter()
            .map(|item| {
                let body = format!(
                    r#"{{"object":"page","entry":[{{"id":"P","time":1,"changes":[{{"field":"feed","value":{{"item":"{item}","verb":"add","post_id":"P_1","from":{{"id":"U"}},"created_time":5}}}}]}}]}}"#
                );
                let events = split(&mut body.into_bytes()).expect("split").events;
                assert_eq!(events[0].event_type, "page.feed");
                events[0].dedup_key.as_str().to_string()
            })
            .collect();
        assert_eq!(keys.len(), kinds.len());
    }
}
