//! Delivery: fixture bodies in, signed deliveries out; routing and tenants; retries, dead
//! letters and replay; the SSRF guard.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, SECRET, Storage, TestApp, fixture_bodies, whatsapp_body};
use crate::receiver::{Receiver, Reply, catch_all};

const WAIT: Duration = Duration::from_secs(20);

/// Verifies a delivery with the independent Standard Webhooks implementation.
fn verify(secret: &str, r: &crate::receiver::Received) -> Result<(), String> {
    let wh = standardwebhooks::Webhook::new(secret).map_err(|e| e.to_string())?;
    let mut headers = hyper::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(
            name,
            r.header(name)
                .parse()
                .map_err(|_| format!("{name} header"))?,
        );
    }
    wh.verify(&r.body, &headers).map_err(|e| e.to_string())
}

use crate::helpers::fresh_app as app;

#[actix_web::test]
async fn every_fixture_event_reaches_an_admin_catch_all_endpoint_once_with_a_valid_signature() {
    let (_storage, app) = app().await;
    // The admin's own endpoint receives every account's events, owned or not.
    let (receiver, ep) = crate::receiver::admin_catch_all(&app).await;
    assert_eq!(ep["tenant_id"], Value::Null);
    let secret = ep["secret"].as_str().expect("secret").to_string();

    let bodies = fixture_bodies();
    for (_, _, body) in &bodies {
        assert_eq!(app.post_signed(body, SECRET).await.status(), 200);
    }
    let stats = app.wait_until_split(bodies.len() as u64).await;
    let events = stats["events"].as_u64().expect("events") as usize;
    assert!(events > 50, "fixtures give many events: {stats}");

    let got = receiver.wait_for(events, WAIT).await;
    // Give a duplicate delivery the time to show up before counting.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let got_after = receiver.received();
    assert_eq!(
        got_after.len(),
        got.len().max(events),
        "each event exactly once"
    );
    let mut ids = HashSet::new();
    for r in &got_after {
        verify(&secret, r).unwrap_or_else(|e| panic!("signature rejected: {e}"));
        let body = r.json();
        let id = body["id"].as_str().expect("id");
        assert_eq!(r.header("webhook-id"), format!("evt_{id}"));
        assert!(ids.insert(id.to_string()), "event {id} delivered twice");
        for field in [
            "type",
            "platform",
            "source",
            "account_id",
            "received_at",
            "data",
        ] {
            assert!(!body[field].is_null(), "{field} missing in {body}");
        }
    }
    // Delivered state is visible per event.
    let one = got_after[0].json();
    let id = one["id"].as_str().expect("id");
    let e = event_status(&app, id, "delivered").await;
    assert_eq!(e["deliveries"][0]["attempts"], 1);
}

#[actix_web::test]
async fn raw_mode_forwards_metas_exact_body_signed_with_the_endpoint_secret() {
    let (_storage, app) = app().await;
    let receiver = Receiver::start();
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    let ep = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "event_types": ["whatsapp.*"], "raw": true}),
        )
        .await;
    let secret = ep["secret"].as_str().expect("secret");
    // Two events in one body: one raw delivery of the body.
    let body = whatsapp_body(&["wamid.raw1".into(), "wamid.raw2".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    let got = receiver.wait_for(1, WAIT).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1);
    assert_eq!(got[0].body, body, "the exact bytes Meta sent");
    let sig = got[0].header("x-hub-signature-256");
    assert_eq!(
        hookd::meta::signature::verify(Some(sig.as_bytes()), &body, &[secret.as_bytes()]),
        Ok(())
    );
    verify(secret, &got[0]).expect("also Standard Webhooks signed");
    assert!(got[0].header("webhook-id").starts_with("raw_"));

    // Requests journaled back to back: each is forwarded with its own bytes, not only the
    // newest one.
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| whatsapp_body(&[format!("wamid.raw.burst.{i}")]))
        .collect();
    for b in &bodies {
        assert_eq!(app.post_signed(b, SECRET).await.status(), 200);
    }
    let got = receiver.wait_for(4, WAIT).await;
    for b in &bodies {
        assert!(got.iter().any(|r| &r.body == b), "a body was not forwarded");
    }
}

fn page_body(page_id: &str, post: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "page",
        "entry": [{"id": page_id, "time": 1, "changes": [{"field": "feed", "value": {
            "item": "post", "verb": "add", "post_id": post, "from": {"id": "1"}, "created_time": 1
        }}]}]
    }))
    .expect("json")
}

fn status_body(phone_number_id: &str, id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "1", "phone_number_id": phone_number_id},
            "statuses": [{"id": id, "status": "delivered", "timestamp": "1700000000", "recipient_id": "2"}]
        }}]}]
    }))
    .expect("json")
}

#[actix_web::test]
async fn exact_wildcard_and_account_filters_route_and_tenants_never_see_each_other() {
    let (_storage, app) = app().await;
    let (exact, wildcard, account, pages) = (
        Receiver::start(),
        Receiver::start(),
        Receiver::start(),
        Receiver::start(),
    );
    let (tenant_a, key_a) = app.tenant_owning("a", &["WABA1", "PN1"]).await;
    let (_tenant_b, key_b) = app.tenant_owning("b", &["PN2", "P1"]).await;
    let ep_exact = app
        .endpoint(
            &key_a,
            json!({"url": exact.url, "event_types": ["whatsapp.messages"]}),
        )
        .await;
    app.endpoint(
        &key_a,
        json!({"url": wildcard.url, "event_types": ["whatsapp.*"]}),
    )
    .await;
    let ep_b = app
        .endpoint(
            &key_b,
            json!({"url": account.url, "event_types": ["*"], "account_ids": ["PN2"]}),
        )
        .await;
    app.endpoint(&key_b, json!({"url": pages.url, "event_types": ["page.*"]}))
        .await;

    let bodies = [
        whatsapp_body(&["wamid.r1".into()]), // whatsapp.messages, account PN1
        status_body("PN1", "s1"),            // whatsapp.statuses, PN1
        status_body("PN2", "s2"),            // whatsapp.statuses, PN2
        page_body("P1", "p1"),               // page.feed
    ];
    for b in &bodies {
        assert_eq!(app.post_signed(b, SECRET).await.status(), 200);
    }
    app.wait_until_split(bodies.len() as u64).await;
    exact.wait_for(1, WAIT).await;
    wildcard.wait_for(2, WAIT).await;
    account.wait_for(1, WAIT).await;
    pages.wait_for(1, WAIT).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let types = |r: &Receiver| -> Vec<String> {
        let mut t: Vec<String> = r
            .received()
            .iter()
            .map(|x| x.json()["type"].as_str().unwrap_or("").to_string())
            .collect();
        t.sort();
        t
    };
    assert_eq!(types(&exact), ["whatsapp.messages"]);
    // A's catch-all gets A's numbers only: PN2 is B's.
    assert_eq!(types(&wildcard), ["whatsapp.messages", "whatsapp.statuses"]);
    assert_eq!(types(&account), ["whatsapp.statuses"]);
    assert_eq!(account.received()[0].json()["account_id"], "PN2");
    assert_eq!(types(&pages), ["page.feed"]);

    // Tenant B cannot see A's endpoint, its attempts, or A's events; A sees only its own.
    let a_ep = ep_exact["id"].as_str().expect("id");
    for path in [
        format!("/api/v1/endpoints/{a_ep}"),
        format!("/api/v1/endpoints/{a_ep}/attempts"),
    ] {
        let (status, _) = app.call(Method::GET, &path, &key_b, None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/endpoints/{a_ep}"),
            &key_b,
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 404);
    let (_, list) = app
        .call(Method::GET, "/api/v1/endpoints", &key_a, None)
        .await;
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .all(|e| e["tenant_id"] == tenant_a.as_str() && e.get("secret").is_none())
    );
    let (_, events_a) = app.call(Method::GET, "/api/v1/events", &key_a, None).await;
    assert_eq!(
        events_a["items"].as_array().expect("items").len(),
        2,
        "{events_a}"
    );
    let (_, events_b) = app.call(Method::GET, "/api/v1/events", &key_b, None).await;
    let b_items = events_b["items"].as_array().expect("items");
    assert_eq!(b_items.len(), 2, "{events_b}");
    let page_event = b_items
        .iter()
        .find(|e| e["type"] == "page.feed")
        .expect("page event");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/events/{}", page_event["id"].as_str().unwrap_or("")),
            &key_a,
            None,
        )
        .await;
    assert_eq!(status, 404, "A cannot read B's event");
    let (status, own) = app
        .call(
            Method::GET,
            &format!("/api/v1/events/{}", page_event["id"].as_str().unwrap_or("")),
            &key_b,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let seen: Vec<&str> = own["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter_map(|d| d["endpoint_id"].as_str())
        .collect();
    assert_eq!(
        seen.len(),
        1,
        "B sees its own page endpoint's delivery only: {own}"
    );
    assert_ne!(
        seen[0],
        ep_b["id"].as_str().unwrap_or(""),
        "the account-filtered endpoint did not get a page event"
    );
    // Admin-only routes refuse tenant keys; a wrong key is 401.
    let (status, _) = app
        .call(
            Method::POST,
            "/api/v1/tenants",
            &key_a,
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .call(Method::GET, "/api/v1/endpoints", "hk_nope", None)
        .await;
    assert_eq!(status, 401);
}

async fn wait_attempts(app: &TestApp, key: &str, ep: &str, n: usize) -> Vec<Value> {
    let path = format!("/api/v1/endpoints/{ep}/attempts");
    let page = app
        .get_until(&path, key, |p| {
            p["items"].as_array().is_some_and(|i| i.len() >= n)
        })
        .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

async fn event_status(app: &TestApp, id: &str, want: &str) -> Value {
    let path = format!("/api/v1/events/{id}");
    app.get_until(&path, ADMIN_KEY, |e| e["status"] == want)
        .await
}

#[actix_web::test]
async fn server_errors_are_retried_on_the_schedule_until_delivered() {
    let (_storage, app) = app().await;
    let receiver = Receiver::start();
    receiver.script(&[Reply::Status(500), Reply::Status(502)]);
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    let ep = app
        .endpoint(&key, json!({"url": receiver.url, "event_types": ["*"], "retry_schedule": ["0s", "200ms", "200ms", "200ms"]}))
        .await;
    let ep_id = ep["id"].as_str().expect("id");
    app.post_signed(&whatsapp_body(&["wamid.retry".into()]), SECRET)
        .await;
    let got = receiver.wait_for(3, WAIT).await;
    let ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 1, "every attempt carries the same webhook-id");
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(150),
        "the retry waited its delay (±20 %): {gap:?}"
    );
    let attempts = wait_attempts(&app, &key, ep_id, 3).await;
    let statuses: Vec<u64> = attempts
        .iter()
        .rev()
        .map(|a| a["status"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(statuses, [500, 502, 200]);
    let event_id = got[0].json()["id"].as_str().expect("id").to_string();
    let e = event_status(&app, &event_id, "delivered").await;
    assert_eq!(e["deliveries"][0]["attempts"], 3);
    // Statistics count the three attempts.
    let (_, s) = app
        .call(
            Method::GET,
            &format!("/api/v1/endpoints/{ep_id}/stats?period=1h"),
            &key,
            None,
        )
        .await;
    assert_eq!(s["stats"]["attempts"], 3, "{s}");
    assert_eq!(s["stats"]["successes"], 1);
    assert!(s["stats"]["last_success"].is_u64());
}

#[actix_web::test]
async fn retry_after_on_429_is_honoured() {
    let (_storage, app) = app().await;
    let receiver = Receiver::start();
    receiver.script(&[Reply::RetryAfter(429, 1)]);
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    app.endpoint(&key, json!({"url": receiver.url, "event_types": ["*"], "retry_schedule": ["0s", "10ms", "10ms"]}))
        .await;
    app.post_signed(&whatsapp_body(&["wamid.429".into()]), SECRET)
        .await;
    let got = receiver.wait_for(2, WAIT).await;
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "waited Retry-After, not 10ms: {gap:?}"
    );
}

#[actix_web::test]
async fn gone_disables_the_endpoint_and_dead_letters_the_delivery() {
    let (_storage, app) = app().await;
    let (receiver, key, ep) = catch_all(&app).await;
    receiver.script(&[Reply::Status(410)]);
    let ep_id = ep["id"].as_str().expect("id");
    app.post_signed(&whatsapp_body(&["wamid.gone".into()]), SECRET)
        .await;
    receiver.wait_for(1, WAIT).await;
    let view = app
        .get_until(&format!("/api/v1/endpoints/{ep_id}"), &key, |v| {
            v["disabled_reason"] == "gone"
        })
        .await;
    assert_eq!(view["active"], false);
    let (_, dead) = app.call(Method::GET, "/api/v1/dead", &key, None).await;
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(1), "{dead}");
    // A disabled endpoint gets nothing more.
    app.post_signed(&whatsapp_body(&["wamid.gone2".into()]), SECRET)
        .await;
    app.wait_until_split(2).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 1);
    // Turning it on again clears the state.
    let (status, v) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/endpoints/{ep_id}"),
            &key,
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["active"], true, "{v}");
}

#[actix_web::test]
async fn exhausted_deliveries_go_dead_and_bulk_replay_delivers_them() {
    let (_storage, app) = app().await;
    let receiver = Receiver::start();
    receiver.answer_by_default(Reply::Status(500));
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    let ep = app
        .endpoint(&key, json!({"url": receiver.url, "event_types": ["whatsapp.messages"], "retry_schedule": ["0s", "50ms", "50ms"]}))
        .await;
    let ep_id = ep["id"].as_str().expect("id").to_string();
    let wamids: Vec<String> = (0..5).map(|i| format!("wamid.dead{i}")).collect();
    app.post_signed(&whatsapp_body(&wamids), SECRET).await;
    receiver.wait_for(15, WAIT).await; // 3 attempts each
    let dead = app
        .get_until(&format!("/api/v1/dead?endpoint_id={ep_id}"), &key, |d| {
            d["items"].as_array().map(Vec::len) == Some(5)
        })
        .await;
    assert_eq!(dead["items"][0]["attempts"], 3);
    let first = receiver.received()[0].json()["id"]
        .as_str()
        .expect("id")
        .to_string();
    event_status(&app, &first, "dead").await;

    let (status, dry) = app
        .call(
            Method::POST,
            "/api/v1/dead/replay",
            &key,
            Some(json!({"endpoint_id": ep_id, "type": "whatsapp.messages", "dry_run": true})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(dry["matched"], 5);
    let (_, none) = app
        .call(
            Method::POST,
            "/api/v1/dead/replay",
            &key,
            Some(json!({"type": "page.feed", "dry_run": true})),
        )
        .await;
    assert_eq!(none["matched"], 0);

    receiver.answer_by_default(Reply::Status(200));
    let (status, started) = app
        .call(
            Method::POST,
            "/api/v1/dead/replay",
            &key,
            Some(json!({"endpoint_id": ep_id, "rate": 20})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["matched"], 5);
    let got = receiver.wait_for(20, WAIT).await;
    let delivered: HashSet<String> = got[15..]
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_eq!(delivered.len(), 5, "each dead delivery sent again once");
    event_status(&app, &first, "delivered").await;
    let (_, dead) = app.call(Method::GET, "/api/v1/dead", &key, None).await;
    assert_eq!(dead["items"].as_array().map(Vec::len), Some(0));
}

#[actix_web::test]
async fn one_delivery_can_be_retried_now() {
    let (_storage, app) = app().await;
    let receiver = Receiver::start();
    receiver.script(&[Reply::Status(500)]);
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    // The second attempt would wait an hour.
    let ep = app
        .endpoint(
            &key,
            json!({"url": receiver.url, "event_types": ["*"], "retry_schedule": ["0s", "1h"]}),
        )
        .await;
    let ep_id = ep["id"].as_str().expect("id");
    app.post_signed(&whatsapp_body(&["wamid.now".into()]), SECRET)
        .await;
    let got = receiver.wait_for(1, WAIT).await;
    let id = got[0].json()["id"].as_str().expect("id").to_string();
    event_status(&app, &id, "failed").await;
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/events/{id}/deliveries/{ep_id}/retry"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 202);
    receiver.wait_for(2, WAIT).await;
    let e = event_status(&app, &id, "delivered").await;
    assert_eq!(e["deliveries"][0]["attempts"], 2);
}

#[actix_web::test]
async fn endpoint_input_is_validated_with_the_field_named() {
    let (_storage, app) = app().await;
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    let cases = [
        (json!({"event_types": ["*"]}), "url"),
        (
            json!({"url": "ftp://x.example", "event_types": ["*"]}),
            "url",
        ),
        (json!({"url": "https://x.example"}), "event_types"),
        (
            json!({"url": "https://x.example", "event_types": ["sms.*"]}),
            "event_types",
        ),
        (
            json!({"url": "https://x.example", "event_types": ["*"], "timeout": "5h"}),
            "timeout",
        ),
        (
            json!({"url": "https://x.example", "event_types": ["*"], "secret": "abc"}),
            "secret",
        ),
        (
            json!({"url": "https://x.example", "event_types": ["*"], "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, err) = app
            .call(Method::POST, "/api/v1/endpoints", &key, Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {err}");
        assert_eq!(err["error"]["field"], field, "{body}: {err}");
    }
    let (status, types) = app
        .call(Method::GET, "/api/v1/event-types", &key, None)
        .await;
    assert_eq!(status, 200);
    assert!(
        types["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|t| t["type"] == "whatsapp.messages")
    );
}

#[actix_web::test]
async fn a_test_send_reaches_the_endpoint_and_returns_the_attempt() {
    let (_storage, app) = app().await;
    let (receiver, key, ep) = catch_all(&app).await;
    receiver.script(&[Reply::Status(204)]);
    let (status, attempt) = app
        .call(
            Method::POST,
            &format!("/api/v1/endpoints/{}/test", ep["id"].as_str().unwrap_or("")),
            &key,
            Some(json!({"type": "instagram.comments"})),
        )
        .await;
    assert_eq!(status, 200, "{attempt}");
    assert_eq!(attempt["status"], 204);
    assert_eq!(attempt["delivered"], true);
    let got = receiver.wait_for(1, WAIT).await;
    let sent = got[0].json();
    assert_eq!(sent["type"], "instagram.comments");
    // The catalogue's real-shaped sample, not a placeholder.
    let (_, catalogued) = app
        .call(
            Method::GET,
            "/api/v1/event-types/instagram.comments",
            &key,
            None,
        )
        .await;
    assert_eq!(sent["data"], catalogued["sample_data"]);
    assert_eq!(sent["data"]["id"], "17867301270523379");
    assert_eq!(sent["account_id"], "17841430541631416");
    verify(ep["secret"].as_str().expect("secret"), &got[0]).expect("signed");

    let (status, err) = app
        .call(
            Method::POST,
            &format!("/api/v1/endpoints/{}/test", ep["id"].as_str().unwrap_or("")),
            &key,
            Some(json!({"type": "instagram.not_a_type"})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"]["field"], "type");
}

#[actix_web::test]
async fn a_rotated_secret_keeps_the_old_one_signing_during_the_overlap() {
    let (_storage, app) = app().await;
    let (receiver, key, ep) = catch_all(&app).await;
    let old = ep["secret"].as_str().expect("secret").to_string();
    let (status, rotated) = app
        .call(
            Method::POST,
            &format!(
                "/api/v1/endpoints/{}/secret/rotate",
                ep["id"].as_str().unwrap_or("")
            ),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let new = rotated["secret"].as_str().expect("secret").to_string();
    assert_ne!(old, new);
    app.post_signed(&whatsapp_body(&["wamid.rot".into()]), SECRET)
        .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    verify(&new, &got[0]).expect("new secret verifies");
    verify(&old, &got[0]).expect("old secret still verifies");
}

#[actix_web::test]
async fn the_ssrf_guard_refuses_private_addresses_unless_allow_listed() {
    let storage = Storage::start();
    let mut settings = storage.settings();
    settings.delivery.ssrf.allow = vec![];
    let app = TestApp::spawn(settings).await;
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    for url in [
        "http://127.0.0.1:9/x",
        "http://10.1.2.3/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9/x",
    ] {
        let (status, err) = app
            .call(
                Method::POST,
                "/api/v1/endpoints",
                &key,
                Some(json!({"url": url, "event_types": ["*"]})),
            )
            .await;
        assert_eq!(status, 422, "{url}: {err}");
        assert_eq!(err["error"]["field"], "url");
    }
    // A name is judged after DNS, when connecting: `localhost` resolves to loopback.
    let receiver = Receiver::start();
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let ep = app
        .endpoint(&key, json!({"url": by_name, "event_types": ["*"]}))
        .await;
    app.post_signed(&whatsapp_body(&["wamid.ssrf".into()]), SECRET)
        .await;
    let dead = app
        .get_until("/api/v1/dead", &key, |d| {
            d["items"].as_array().is_some_and(|i| !i.is_empty())
        })
        .await;
    let reason = dead["items"][0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("not a public address"), "{dead}");
    assert_eq!(receiver.count(), 0, "nothing reached the loopback receiver");
    let attempts = wait_attempts(&app, &key, ep["id"].as_str().unwrap_or(""), 1).await;
    assert!(attempts[0]["status"].is_null());

    // With the allow-list, the same name is delivered to (by a hookd of its own).
    let storage2 = Storage::start();
    let mut allowed = storage2.settings();
    allowed.delivery.ssrf.allow = vec![
        "127.0.0.0/8".parse().expect("cidr"),
        "::1/128".parse().expect("cidr"),
    ];
    let app2 = TestApp::spawn(allowed).await;
    let (_, key2) = app2.tenant_owning("acme", &["WABA1"]).await;
    app2.endpoint(&key2, json!({"url": by_name, "event_types": ["*"]}))
        .await;
    app2.post_signed(&whatsapp_body(&["wamid.ssrf2".into()]), SECRET)
        .await;
    receiver.wait_for(1, WAIT).await;
}

#[actix_web::test]
async fn events_filter_by_overall_delivery_status_and_stats_count_deliveries_by_where_they_stand() {
    let (_storage, app) = app().await;
    let (healthy, failing) = (Receiver::start(), Receiver::start());
    failing.answer_by_default(Reply::Status(500));
    let (_, key) = app.tenant_owning("acme", &["PN1"]).await;
    app.endpoint(
        &key,
        json!({"url": healthy.url, "event_types": ["whatsapp.messages"]}),
    )
    .await;
    app.endpoint(
        &key,
        json!({"url": failing.url, "event_types": ["whatsapp.statuses"],
               "retry_schedule": ["0s", "1h"]}),
    )
    .await;
    let posts = [
        whatsapp_body(&["wamid.ok".into()]),
        status_body("PN1", "wamid.failing"),
        status_body("PN9", "wamid.nobody"),
    ];
    for body in &posts {
        assert_eq!(app.post_signed(body, SECRET).await.status(), 200);
    }
    healthy.wait_for(1, WAIT).await;
    // The first attempt failed; the next waits an hour.
    failing.wait_for(1, WAIT).await;

    let only = |status: &'static str| {
        let path = format!("/api/v1/events?status={status}");
        let app = &app;
        async move {
            app.get_until(&path, ADMIN_KEY, |p| {
                p["items"].as_array().is_some_and(|i| i.len() == 1)
            })
            .await["items"][0]["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        }
    };
    assert_eq!(only("delivered").await, "whatsapp.messages");
    assert_eq!(only("failed").await, "whatsapp.statuses");
    let unrouted = app
        .get_until("/api/v1/events?status=unrouted", ADMIN_KEY, |p| {
            p["items"].is_array()
        })
        .await;
    assert_eq!(
        unrouted["items"].as_array().map(Vec::len),
        Some(1),
        "{unrouted}"
    );
    assert_eq!(unrouted["items"][0]["account_id"], "PN9");
    let (_, none) = app
        .call(Method::GET, "/api/v1/events?status=dead", ADMIN_KEY, None)
        .await;
    assert_eq!(none["items"], json!([]));
    // A tenant sees the statuses of its own endpoints' deliveries.
    let (_, mine) = app
        .call(Method::GET, "/api/v1/events?status=failed", &key, None)
        .await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "{mine}");
    let (status, err) = app
        .call(Method::GET, "/api/v1/events?status=lost", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error"]["parameter"], "status");

    let stats = app.stats().await;
    assert_eq!(stats["deliveries"]["retrying"], 1, "{stats}");
    assert_eq!(stats["deliveries"]["dead"], 0);
}
