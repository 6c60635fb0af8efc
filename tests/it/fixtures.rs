//! Every fixture body: accepted when signed, split into the stated number and types of events.

use std::collections::BTreeSet;

use hookd::meta::split;

use crate::helpers::{SECRET, Storage, TestApp, fixture_bodies};

/// (file, case within a pywa file, events, their types). Stated by hand from Meta's
/// documented shapes: one event per WhatsApp message, status, echo or call item; one per
/// messaging item or change on Page and Instagram.
const EXPECTED: &[(&str, &str, usize, &[&str])] = &[
    (
        "pywa/account_update.json",
        "account_deleted",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "account_restriction",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "account_violation",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "ad_account_linked",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "authentication_international_eligibility",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "account_disabled",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "mm_api_for_wa_terms_of_service",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "partner_added",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "partner_app_installed",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "partner_app_uninstalled",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "partner_led_business_verification_status",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "partner_removed",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "partner_removed_wa_app_disconnection",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "primary_business_location_set",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "pricing_tiering_update",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "account_offboarded",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/account_update.json",
        "account_reconnected",
        1,
        &["whatsapp.account_update"],
    ),
    (
        "pywa/call_connect.json",
        "business_initiated",
        1,
        &["whatsapp.calls"],
    ),
    (
        "pywa/call_connect.json",
        "user_initiated",
        1,
        &["whatsapp.calls"],
    ),
    (
        "pywa/call_permission_update.json",
        "accept",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/call_permission_update.json",
        "reject",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/call_status.json",
        "call_status",
        1,
        &["whatsapp.calls"],
    ),
    (
        "pywa/call_terminate.json",
        "call_terminate",
        1,
        &["whatsapp.calls"],
    ),
    (
        "pywa/callback_button.json",
        "button",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/callback_button.json",
        "quick_reply",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/callback_button.json",
        "quick_reply_without_context",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/callback_selection.json",
        "callback",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/callback_selection.json",
        "description",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/deleted_message.json",
        "revoke",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/edited_message.json",
        "image",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/flow_completion.json",
        "completion",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/flow_completion.json",
        "without_flow_token",
        1,
        &["whatsapp.messages"],
    ),
    ("pywa/message.json", "text", 1, &["whatsapp.messages"]),
    ("pywa/message.json", "image", 1, &["whatsapp.messages"]),
    (
        "pywa/message.json",
        "media_with_url",
        1,
        &["whatsapp.messages"],
    ),
    ("pywa/message.json", "video", 1, &["whatsapp.messages"]),
    ("pywa/message.json", "document", 1, &["whatsapp.messages"]),
    ("pywa/message.json", "audio", 1, &["whatsapp.messages"]),
    ("pywa/message.json", "voice", 1, &["whatsapp.messages"]),
    (
        "pywa/message.json",
        "static_sticker",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/message.json",
        "animated_sticker",
        1,
        &["whatsapp.messages"],
    ),
    ("pywa/message.json", "reaction", 1, &["whatsapp.messages"]),
    (
        "pywa/message.json",
        "unreaction_empty",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/message.json",
        "unreaction_no_emoji",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/message.json",
        "current_location",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/message.json",
        "chosen_location",
        1,
        &["whatsapp.messages"],
    ),
    ("pywa/message.json", "contacts", 1, &["whatsapp.messages"]),
    ("pywa/message.json", "order", 1, &["whatsapp.messages"]),
    (
        "pywa/message.json",
        "unsupported",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/message.json",
        "unsupported_with_type",
        1,
        &["whatsapp.messages"],
    ),
    ("pywa/message.json", "reply", 1, &["whatsapp.messages"]),
    ("pywa/message.json", "forwarded", 1, &["whatsapp.messages"]),
    (
        "pywa/message.json",
        "forwarded_many_times",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/message.json",
        "interactive_message_with_err",
        1,
        &["whatsapp.messages"],
    ),
    ("pywa/message.json", "referral", 1, &["whatsapp.messages"]),
    (
        "pywa/message_status.json",
        "sent",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "pywa/message_status.json",
        "delivered",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "pywa/message_status.json",
        "read",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "pywa/message_status.json",
        "played",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "pywa/message_status.json",
        "failed",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "pywa/message_status.json",
        "with_tracker",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "pywa/message_status.json",
        "group",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "pywa/outgoing_message.json",
        "text",
        1,
        &["whatsapp.smb_message_echoes"],
    ),
    (
        "pywa/outgoing_message.json",
        "delete",
        1,
        &["whatsapp.smb_message_echoes"],
    ),
    (
        "pywa/outgoing_message.json",
        "edit",
        1,
        &["whatsapp.smb_message_echoes"],
    ),
    (
        "pywa/system.json",
        "phone_number_change",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/system.json",
        "identity_change",
        1,
        &["whatsapp.messages"],
    ),
    (
        "pywa/template_category_update.json",
        "marketing",
        1,
        &["whatsapp.template_category_update"],
    ),
    (
        "pywa/template_components_update.json",
        "element",
        1,
        &["whatsapp.message_template_components_update"],
    ),
    (
        "pywa/template_quality_update.json",
        "yellow",
        1,
        &["whatsapp.message_template_quality_update"],
    ),
    (
        "pywa/template_status_update.json",
        "approved",
        1,
        &["whatsapp.message_template_status_update"],
    ),
    (
        "pywa/template_status_update.json",
        "rejected",
        1,
        &["whatsapp.message_template_status_update"],
    ),
    (
        "pywa/user_marketing_preferences.json",
        "resume",
        1,
        &["whatsapp.user_preferences"],
    ),
    (
        "pywa/user_marketing_preferences.json",
        "signup",
        1,
        &["whatsapp.user_preferences"],
    ),
    (
        "samples/dashboard_test_event_page_messages.json",
        "",
        1,
        &["page.messages"],
    ),
    (
        "samples/instagram_comment.json",
        "",
        1,
        &["instagram.comments"],
    ),
    (
        "samples/instagram_comment_reply_fblogin.json",
        "",
        1,
        &["instagram.comments"],
    ),
    (
        "samples/instagram_dm_message.json",
        "",
        1,
        &["instagram.messages"],
    ),
    (
        "samples/instagram_mentions_and_story_insights_batched.json",
        "",
        2,
        &["instagram.mentions", "instagram.story_insights"],
    ),
    (
        "samples/instagram_message_reaction.json",
        "",
        1,
        &["instagram.message_reactions"],
    ),
    (
        "samples/instagram_messaging_seen.json",
        "",
        1,
        &["instagram.messaging_seen"],
    ),
    (
        "samples/messenger_delivery_and_read_batched.json",
        "",
        2,
        &["messenger.message_deliveries", "messenger.message_reads"],
    ),
    (
        "samples/messenger_echo.json",
        "",
        1,
        &["messenger.message_echoes"],
    ),
    (
        "samples/messenger_message_text.json",
        "",
        1,
        &["messenger.messages"],
    ),
    (
        "samples/messenger_postback.json",
        "",
        1,
        &["messenger.messaging_postbacks"],
    ),
    ("samples/page_feed_comment.json", "", 1, &["page.feed"]),
    ("samples/page_feed_reaction.json", "", 1, &["page.feed"]),
    (
        "samples/page_leadgen_official.json",
        "",
        2,
        &["page.leadgen"],
    ),
    (
        "samples/page_leadgen_string_ids.json",
        "",
        1,
        &["page.leadgen"],
    ),
    (
        "samples/wa_message_text.json",
        "",
        1,
        &["whatsapp.messages"],
    ),
    (
        "samples/wa_message_text_bsuid_2026.json",
        "",
        1,
        &["whatsapp.messages"],
    ),
    (
        "samples/wa_status_delivered.json",
        "",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "samples/wa_status_failed_official.json",
        "",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "samples/wa_status_sent_official.json",
        "",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "samples/wa_value_errors_out_of_band.json",
        "",
        1,
        &["whatsapp.errors"],
    ),
    (
        "whatsapp-api-js/delivered.json",
        "",
        1,
        &["whatsapp.statuses"],
    ),
    (
        "whatsapp-api-js/incoming.json",
        "",
        1,
        &["whatsapp.messages"],
    ),
    ("whatsapp-api-js/read.json", "", 1, &["whatsapp.statuses"]),
    ("whatsapp-api-js/sent.json", "", 1, &["whatsapp.statuses"]),
];

fn expected(file: &str, case: &str) -> (usize, &'static [&'static str]) {
    EXPECTED
        .iter()
        .find(|(f, c, _, _)| *f == file && *c == case)
        .map(|(_, _, n, t)| (*n, *t))
        .unwrap_or_else(|| panic!("no expectation stated for {file} {case}"))
}

#[test]
fn every_fixture_body_splits_into_the_stated_events() {
    let bodies = fixture_bodies();
    assert_eq!(
        bodies.len(),
        EXPECTED.len(),
        "every fixture body has a row, and no more"
    );
    for (file, case, body) in bodies {
        let (count, types) = expected(&file, &case);
        let split = split(&mut body.clone()).unwrap_or_else(|e| panic!("{file} {case}: {e}"));
        assert_eq!(split.events.len(), count, "{file} {case}");
        let got: BTreeSet<&str> = split.events.iter().map(|e| e.event_type.as_str()).collect();
        let want: BTreeSet<&str> = types.iter().copied().collect();
        assert_eq!(got, want, "{file} {case}");
        for e in &split.events {
            assert!(
                !e.account_id.is_empty(),
                "{file} {case}: event without account"
            );
            serde_json::from_str::<serde_json::Value>(&e.data)
                .unwrap_or_else(|err| panic!("{file} {case}: data is not JSON: {err}"));
        }
    }
}

#[actix_web::test]
async fn every_fixture_body_is_accepted_and_stored_as_its_events() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let bodies = fixture_bodies();
    let mut total_events = 0u64;
    let mut unique = BTreeSet::new();
    for (file, case, body) in &bodies {
        let res = app.post_signed(body, SECRET).await;
        assert_eq!(res.status(), 200, "{file} {case}");
        let events = split(&mut body.clone()).expect("split").events;
        total_events += events.len() as u64;
        // Some pywa cases reuse one message id: those are Meta's duplicates and stored once.
        unique.extend(events.into_iter().map(|e| e.dedup_key.digest_hex()));
    }
    let stats = app.wait_until_split(bodies.len() as u64).await;
    assert_eq!(stats["quarantined"], 0);
    assert_eq!(
        stats["events"].as_u64(),
        Some(unique.len() as u64),
        "{stats}"
    );
    assert_eq!(
        stats["events"].as_u64().unwrap_or(0) + stats["duplicates"].as_u64().unwrap_or(0),
        total_events
    );
    let by_type: u64 = stats["events_by_type"]
        .as_object()
        .map(|m| m.values().filter_map(|v| v.as_u64()).sum())
        .unwrap_or(0);
    assert_eq!(by_type, unique.len() as u64);
    app.stop().await;
}
