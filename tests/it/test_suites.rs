//! Test suites: one signed, Meta-shaped sample of every type of an object for an account,
//! through hookd's own ingress, delivered only to the suite's endpoints, marked and counted
//! apart, judged per type; a tenant's suites only for its own accounts.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, SECRET, Storage, TestApp, whatsapp_body};
use crate::receiver::Receiver;

const ACCOUNT: &str = "106540352242922";

async fn suite(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    app.call(Method::POST, "/api/v1/test-suites", key, Some(body))
        .await
}

async fn run_until_done(app: &TestApp, key: &str, suite_id: &str) -> Value {
    let (status, run) = app
        .call(
            Method::POST,
            &format!("/api/v1/test-suites/{suite_id}/run"),
            key,
            None,
        )
        .await;
    assert_eq!(status, 202, "{run}");
    let path = run["results"].as_str().expect("results link").to_string();
    app.get_until(&path, key, |r| r["summary"]["done"] == true)
        .await
}

fn whatsapp_types(app_types: &Value) -> usize {
    app_types["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|t| t["platform"] == "whatsapp")
        .count()
}

#[actix_web::test]
async fn a_run_sends_every_whatsapp_type_once_and_each_passes_at_the_suites_endpoint_only() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (_, key) = app.tenant_owning("acme", &[ACCOUNT]).await;
    let (named, bystander, admins) = (Receiver::start(), Receiver::start(), Receiver::start());
    let ep = app
        .endpoint(&key, json!({"url": named.url, "event_types": ["*"]}))
        .await;
    app.endpoint(&key, json!({"url": bystander.url, "event_types": ["*"]}))
        .await;
    app.endpoint(ADMIN_KEY, json!({"url": admins.url, "event_types": ["*"]}))
        .await;
    let (status, created) = suite(
        &app,
        &key,
        json!({"source": "test", "object": "whatsapp_business_account",
               "account_id": ACCOUNT, "endpoint_ids": [ep["id"]]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let types = app.api_json("/api/v1/event-types").await;
    let n = whatsapp_types(&types);
    assert_eq!(created["types"].as_array().map(Vec::len), Some(n));
    let id = created["id"].as_str().expect("id");

    let results = run_until_done(&app, &key, id).await;
    assert_eq!(results["summary"]["passed"], n, "{results:#}");
    for r in results["results"].as_array().expect("results") {
        assert_eq!(r["outcome"], "passed", "{r}");
        assert_eq!(r["accepted"], true);
        for e in r["events"].as_array().expect("events") {
            assert_eq!(e["type"], r["type"]);
        }
    }
    let got = named.wait_for(n, Duration::from_secs(20)).await;
    assert!(got.iter().all(|r| r.json()["test"] == true));
    assert!(got.iter().all(|r| r.json()["account_id"] == ACCOUNT));
    // Delivered to the suite's endpoint only.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bystander.count(), 0);
    assert_eq!(admins.count(), 0);

    // Counted apart: the traffic's figures are untouched.
    let stats = app.stats().await;
    assert_eq!(stats["events"], 0, "{stats}");
    assert_eq!(stats["received"], 0, "{stats}");
    assert!(stats["test_events"].as_u64() >= Some(n as u64), "{stats}");
    let ep_stats = app
        .api_json(&format!(
            "/api/v1/endpoints/{}/stats",
            ep["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(ep_stats["stats"]["attempts"], 0, "{ep_stats}");
    assert_eq!(ep_stats["stats"]["test_attempts"], n, "{ep_stats}");
    // The events API marks them.
    let events = app.api_json("/api/v1/events?limit=5").await;
    assert_eq!(events["items"][0]["test"]["suite_id"], id, "{events}");

    // A second run is not taken for Meta's resend of the first.
    let again = run_until_done(&app, &key, id).await;
    assert_eq!(again["summary"]["passed"], n, "{again:#}");
    named.wait_for(2 * n, Duration::from_secs(20)).await;
    let saved = app.api_json(&format!("/api/v1/test-suites/{id}")).await;
    assert_eq!(saved["runs"].as_array().map(Vec::len), Some(2), "{saved}");
}

#[actix_web::test]
async fn a_type_no_named_endpoint_takes_is_reported_not_routed_and_a_dead_one_failed() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let receiver = Receiver::start();
    receiver.answer_by_default(crate::receiver::Reply::Status(500));
    let ep = app
        .endpoint(
            ADMIN_KEY,
            json!({"url": receiver.url, "event_types": ["page.feed"], "retry_schedule": ["0s", "10ms"]}),
        )
        .await;
    let (status, created) = suite(
        &app,
        ADMIN_KEY,
        json!({"name": "page checks", "source": "test", "object": "page", "account_id": "4242",
               "endpoint_ids": [ep["id"]], "types": ["page.feed", "messenger.messages"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let results = run_until_done(&app, ADMIN_KEY, created["id"].as_str().expect("id")).await;
    let outcome = |t: &str| {
        results["results"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["type"] == t))
            .map(|r| (r["outcome"].clone(), r["problem"].clone()))
            .expect("result")
    };
    let (feed, why) = outcome("page.feed");
    assert_eq!(feed, "failed", "{results:#}");
    assert!(why.as_str().unwrap_or_default().contains("dead"), "{why}");
    assert_eq!(outcome("messenger.messages").0, "not_routed");
    assert_eq!(results["summary"]["failed"], 1);
}

#[actix_web::test]
async fn a_tenant_runs_suites_only_for_its_own_accounts_and_endpoints_and_sees_only_its_own() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (_, key) = app.tenant_owning("acme", &[ACCOUNT]).await;
    let (_, other_key) = app.tenant_owning("globex", &["999"]).await;
    let r = Receiver::start();
    let mine = app
        .endpoint(&key, json!({"url": r.url, "event_types": ["*"]}))
        .await;
    let theirs = app
        .endpoint(&other_key, json!({"url": r.url, "event_types": ["*"]}))
        .await;
    let body = |account: &str, ep: &Value| {
        json!({"source": "test", "object": "whatsapp_business_account",
               "account_id": account, "endpoint_ids": [ep["id"]]})
    };
    assert_eq!(suite(&app, &key, body("999", &mine)).await.0, 403);
    let (status, e) = suite(&app, &key, body(ACCOUNT, &theirs)).await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (422, Some("endpoint_ids")),
        "{e}"
    );
    for (field, bad) in [
        ("types", json!({"types": ["whatsapp.nope"]})),
        ("types", json!({"types": ["page.feed"]})),
        ("object", json!({"object": "myspace"})),
        ("source", json!({"source": "elsewhere"})),
    ] {
        let mut b = body(ACCOUNT, &mine);
        for (k, v) in bad.as_object().expect("object") {
            b[k] = v.clone();
        }
        let (status, e) = suite(&app, &key, b).await;
        assert_eq!(
            (status, e["error"]["field"].as_str()),
            (422, Some(field)),
            "{e}"
        );
    }
    let (status, created) = suite(&app, &key, body(ACCOUNT, &mine)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let path = format!("/api/v1/test-suites/{id}");
    assert_eq!(app.call(Method::GET, &path, &other_key, None).await.0, 404);
    let run = format!("{path}/run");
    assert_eq!(app.call(Method::POST, &run, &other_key, None).await.0, 404);
    let (_, list) = app
        .call(Method::GET, "/api/v1/test-suites", &other_key, None)
        .await;
    assert_eq!(list["items"], json!([]), "{list}");
    let (_, list) = app
        .call(Method::GET, "/api/v1/test-suites", ADMIN_KEY, None)
        .await;
    assert_eq!(list["items"][0]["id"], id, "{list}");
    // Once the account is taken from the tenant, its suite no longer runs.
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!(
                "/api/v1/tenants/{}/accounts/{ACCOUNT}",
                created["tenant_id"].as_str().expect("tenant")
            ),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(app.call(Method::POST, &run, &key, None).await.0, 403);
    assert_eq!(app.call(Method::DELETE, &path, &key, None).await.0, 204);
    assert_eq!(app.call(Method::GET, &path, &key, None).await.0, 404);
}

#[actix_web::test]
async fn a_request_id_from_outside_never_makes_meta_traffic_a_test() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (receiver, _, _) = crate::receiver::catch_all(&app).await;
    let body = whatsapp_body(&["wamid.looks-like-a-test".into()]);
    let res = app
        .client
        .post(format!("{}/webhooks/test", app.base))
        .header(
            "X-Hub-Signature-256",
            hookd::meta::signature::sign(SECRET.as_bytes(), &body),
        )
        .header("X-Request-Id", "hookd-test.ts_x.run_y.0")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    assert_ne!(res.headers()["x-request-id"], "hookd-test.ts_x.run_y.0");
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert!(got[0].json().get("test").is_none(), "{}", got[0].json());
    assert_eq!(app.stats().await["events"], 1);
}

#[actix_web::test]
async fn page_and_instagram_suites_pass_for_every_type_of_their_object() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (_receiver, ep) = crate::receiver::admin_catch_all(&app).await;
    for (object, account) in [("page", "1029384756"), ("instagram", "17841400000000001")] {
        let (status, created) = suite(
            &app,
            ADMIN_KEY,
            json!({"source": "test", "object": object, "account_id": account,
                   "endpoint_ids": [ep["id"]]}),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let types = created["types"].as_array().map(Vec::len).unwrap_or(0);
        assert!(types > 5, "{created}");
        let results = run_until_done(&app, ADMIN_KEY, created["id"].as_str().expect("id")).await;
        assert_eq!(results["summary"]["passed"], types, "{object}: {results:#}");
    }
}
