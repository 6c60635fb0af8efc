//! The user an event is about, in the delivered envelope: a WhatsApp message's `sender` and a
//! status's `recipient`, whether Meta names them by phone number, by business-scoped user id
//! (2026), or both; a Messenger or Instagram message's `sender` by its scoped id.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, SECRET, Storage, TestApp, fixtures_dir, whatsapp_body};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(20);

/// A text message from a user who adopted a username and shows no phone number, as Meta's
/// "Business-scoped user IDs" page documents it
/// (developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/):
/// the contact has `user_id` and `profile.username` but no `wa_id`, the message
/// `from_user_id` but no `from`.
const BSUID_ONLY: &str = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Pat","username":"@pat"},"user_id":"US.555000111222333444"}],"messages":[{"from_user_id":"US.555000111222333444","id":"wamid.bsuid-only-1","timestamp":"1775000100","type":"text","text":{"body":"hi"}}]}}]}]}"#;

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(path)).expect("fixture")
}

#[actix_web::test]
async fn the_envelope_names_the_sender_or_recipient_by_phone_by_business_scoped_id_or_both() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let rx = Receiver::start();
    // The admin's own endpoint receives every account's events.
    app.endpoint(ADMIN_KEY, json!({"url": rx.url, "event_types": ["*"]}))
        .await;
    let bodies = [
        whatsapp_body(&["wamid.phone-only-1".to_string()]),
        BSUID_ONLY.as_bytes().to_vec(),
        fixture("samples/wa_message_text_bsuid_2026.json"),
        fixture("whatsapp-api-js/delivered.json"),
        fixture("samples/messenger_message_text.json"),
        fixture("samples/instagram_dm_message.json"),
    ];
    for body in &bodies {
        assert_eq!(app.post_signed(body, SECRET).await.status(), 200);
    }
    let received = rx.wait_for(6, WAIT).await;
    let by_account = |account: &str, kind: &str| -> Value {
        received
            .iter()
            .map(|r| r.json())
            .find(|e| e["account_id"] == account && e["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} of {account}"))
    };
    let phone = by_account("PN1", "whatsapp.messages");
    assert_eq!(phone["sender"], json!({"wa_id": "15550001111"}));
    let pat = json!({"user_id": "US.555000111222333444", "username": "@pat"});
    let bsuid_only: Vec<Value> = received
        .iter()
        .map(|r| r.json())
        .filter(|e| e["data"]["messages"][0]["id"] == "wamid.bsuid-only-1")
        .collect();
    assert_eq!(bsuid_only.len(), 1);
    assert_eq!(bsuid_only[0]["sender"], pat);
    let both = received
        .iter()
        .map(|r| r.json())
        .find(|e| e["data"]["messages"][0]["from_user_id"] == "US.13491208655302741918")
        .expect("the 2026 sample");
    assert_eq!(
        both["sender"],
        json!({
            "wa_id": "16505551234",
            "user_id": "US.13491208655302741918",
            "parent_user_id": "US.ENT.11815799212886844830",
            "username": "@sheena",
        })
    );
    let status = by_account("123456123", "whatsapp.statuses");
    assert_eq!(
        status["recipient"],
        json!({
            "wa_id": "16315551181",
            "user_id": "US.13491208655302741918",
            "parent_user_id": "US.11815799212886844830",
            "username": "@testusername",
        })
    );
    assert!(status.get("sender").is_none());
    let messenger = by_account("103149398319188", "messenger.messages");
    assert_eq!(messenger["sender"], json!({"id": "3424692677644577"}));
    let instagram = by_account("17841400000000000", "instagram.messages");
    assert_eq!(instagram["sender"], json!({"id": "9000000000000001"}));

    // The API shows the same, and a body without a phone number deduplicates like any other.
    let id = bsuid_only[0]["id"].as_str().expect("event id");
    let event = app.api_json(&format!("/api/v1/events/{id}")).await;
    assert_eq!(event["sender"], pat);
    assert_eq!(
        app.post_signed(BSUID_ONLY.as_bytes(), SECRET)
            .await
            .status(),
        200
    );
    let stats = app.wait_until_split(7).await;
    assert_eq!(stats["duplicates"], 1, "{stats}");
}
