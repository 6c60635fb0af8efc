//! `GET /api/v1/stream`: new events and their delivery outcomes arrive as server-sent events,
//! filtered, and a tenant's stream shows its own only.

use std::time::{Duration, Instant};

use crate::helpers::{ADMIN_KEY, SECRET, Storage, TestApp, whatsapp_body};
use crate::receiver::catch_all;

pub(crate) async fn open(app: &TestApp, key: &str, query: &str) -> reqwest::Response {
    let res = app
        .client
        .get(format!("{}/api/v1/stream{query}", app.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    res
}

/// What the stream has sent once it holds `wanted` (10 s at most).
pub(crate) async fn read_until(res: &mut reqwest::Response, seen: &mut String, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains(wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "never saw {wanted:?} in:\n{seen}");
        if let Ok(Ok(Some(chunk))) = actix_web::rt::time::timeout(left, res.chunk()).await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[actix_web::test]
async fn new_events_and_their_delivery_outcomes_arrive_as_they_happen() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (receiver, _key, ep) = catch_all(&app).await;
    let before = whatsapp_body(&["wamid.before-stream".into()]);
    assert_eq!(app.post_signed(&before, SECRET).await.status(), 200);
    receiver.wait_for(1, Duration::from_secs(20)).await;

    let mut res = open(&app, ADMIN_KEY, "").await;
    let mut seen = String::new();
    read_until(&mut res, &mut seen, ": hookd stream").await;
    let body = whatsapp_body(&["wamid.live-1".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    read_until(&mut res, &mut seen, "wamid.live-1").await;
    read_until(&mut res, &mut seen, "event: delivery").await;
    assert!(seen.contains("event: event\nid: "), "{seen}");
    let delivery = seen
        .split("\n\n")
        .find(|f| f.starts_with("event: delivery"))
        .expect("a delivery frame");
    let data: serde_json::Value = serde_json::from_str(
        delivery
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .expect("data"),
    )
    .expect("json");
    assert_eq!(data["endpoint_id"], ep["id"]);
    assert_eq!(data["status"], 200);
    assert!(
        !seen.contains("wamid.before-stream"),
        "only what came after: {seen}"
    );
}

#[actix_web::test]
async fn a_stream_filters_by_type_and_a_tenant_sees_its_own_only() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (_, key) = app.tenant_owning("acme", &["PN1"]).await;
    let mut mine = open(&app, &key, "").await;
    let mut statuses_only = open(&app, ADMIN_KEY, "?type=whatsapp.statuses").await;
    let (mut seen_mine, mut seen_statuses) = (String::new(), String::new());
    read_until(&mut mine, &mut seen_mine, ": hookd stream").await;
    read_until(&mut statuses_only, &mut seen_statuses, ": hookd stream").await;

    // A tenant's stream shows the events routed to its endpoints.
    let receiver = crate::receiver::Receiver::start();
    app.endpoint(
        &key,
        serde_json::json!({"url": receiver.url, "event_types": ["*"]}),
    )
    .await;
    let other = whatsapp_body(&["wamid.not-theirs".into()]);
    let other = String::from_utf8_lossy(&other).replace("PN1", "PN2");
    assert_eq!(
        app.post_signed(other.as_bytes(), SECRET).await.status(),
        200
    );
    let theirs = whatsapp_body(&["wamid.theirs".into()]);
    assert_eq!(app.post_signed(&theirs, SECRET).await.status(), 200);
    read_until(&mut mine, &mut seen_mine, "wamid.theirs").await;
    assert!(!seen_mine.contains("wamid.not-theirs"), "{seen_mine}");

    let (status, _) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/stream?endpoint_id=ep_nope",
            &key,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/stream?platform=myspace",
            &key,
            None,
        )
        .await;
    assert_eq!(status, 400);
    // The filtered stream shows the status, and none of the messages sent before it.
    let status = serde_json::json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"phone_number_id": "PN1"},
            "statuses": [{"id": "wamid.status-live", "status": "read", "timestamp": "1700000000",
                          "recipient_id": "16505551234"}]}}]}]});
    let status = serde_json::to_vec(&status).expect("json");
    assert_eq!(app.post_signed(&status, SECRET).await.status(), 200);
    read_until(&mut statuses_only, &mut seen_statuses, "wamid.status-live").await;
    assert!(
        !seen_statuses.contains("wamid.theirs") && !seen_statuses.contains("wamid.not-theirs"),
        "{seen_statuses}"
    );
}
