//! Routes and limits users rely on that the other files do not exercise: key revocation,
//! endpoint deletion and its secret, overall statistics, attempt purges, per-endpoint rate and
//! concurrency limits, and a full journal queue.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_KEY, SECRET, Storage, whatsapp_body};
use crate::receiver::{Receiver, Reply, catch_all};

const WAIT: Duration = Duration::from_secs(20);

use crate::helpers::fresh_app as app;

fn wamids(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("wamid.{tag}.{i}")).collect()
}

#[actix_web::test]
async fn a_revoked_tenant_key_is_refused_from_then_on() {
    let (_storage, app) = app().await;
    let (tenant, key) = app.tenant("acme").await;
    let (status, _) = app.call(Method::GET, "/api/v1/endpoints", &key, None).await;
    assert_eq!(status, 200);
    let key_id = format!("key_{}", &hookd::http::auth::key_hash(&key)[..12]);
    let path = format!("/api/v1/tenants/{tenant}/keys/{key_id}");
    // Only the admin revokes.
    let (status, _) = app.call(Method::DELETE, &path, &key, None).await;
    assert_eq!(status, 401);
    let (status, _) = app.call(Method::DELETE, &path, ADMIN_KEY, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call(Method::GET, "/api/v1/endpoints", &key, None).await;
    assert_eq!(status, 401);
    let (status, _) = app.call(Method::DELETE, &path, ADMIN_KEY, None).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn a_deleted_endpoint_is_gone_and_receives_nothing_more() {
    let (_storage, app) = app().await;
    let (receiver, key, ep) = catch_all(&app).await;
    let id = ep["id"].as_str().expect("id");
    let path = format!("/api/v1/endpoints/{id}");
    let (status, secret) = app
        .call(Method::GET, &format!("{path}/secret"), &key, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(secret["secret"], ep["secret"]);

    let (status, _) = app.call(Method::DELETE, &path, &key, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call(Method::GET, &path, &key, None).await;
    assert_eq!(status, 404);
    let (status, _) = app.call(Method::DELETE, &path, &key, None).await;
    assert_eq!(status, 404);
    let body = whatsapp_body(&["wamid.after.delete".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    app.wait_until_split(1).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 0);
}

#[actix_web::test]
async fn overall_statistics_count_attempts_and_a_purge_empties_the_attempt_log() {
    let (_storage, app) = app().await;
    let (receiver, key, ep) = catch_all(&app).await;
    let id = ep["id"].as_str().expect("id");
    let body = whatsapp_body(&wamids("stats", 3));
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    receiver.wait_for(3, WAIT).await;

    let stats = app
        .get_until("/api/v1/deliveries/stats", &key, |s| {
            s["stats"]["attempts"] == 3
        })
        .await;
    assert_eq!(stats["stats"]["successes"], 3, "{stats}");
    let attempts = format!("/api/v1/endpoints/{id}/attempts");
    let (_, log) = app.call(Method::GET, &attempts, &key, None).await;
    assert_eq!(log["items"].as_array().map(Vec::len), Some(3), "{log}");

    let (status, purged) = app
        .call(Method::DELETE, "/api/v1/attempts?older_than=0s", &key, None)
        .await;
    assert_eq!(status, 200, "{purged}");
    assert_eq!(purged["deleted"], 3);
    let (_, log) = app.call(Method::GET, &attempts, &key, None).await;
    assert_eq!(log["items"], json!([]));
    let (status, _) = app
        .call(
            Method::DELETE,
            "/api/v1/attempts?older_than=soon",
            &key,
            None,
        )
        .await;
    assert_eq!(status, 400);
}

/// Arrival times in ms from the first, sorted.
fn arrivals(receiver: &Receiver) -> Vec<u128> {
    let got = receiver.received();
    let first = got.iter().map(|r| r.at).min().expect("something arrived");
    let mut ms: Vec<u128> = got.iter().map(|r| (r.at - first).as_millis()).collect();
    ms.sort_unstable();
    ms
}

#[actix_web::test]
async fn an_endpoints_rate_limit_spaces_its_deliveries() {
    let (_storage, app) = app().await;
    let receiver = Receiver::start();
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    app.endpoint(
        &key,
        json!({"url": receiver.url, "event_types": ["*"], "rate_limit": 5}),
    )
    .await;
    let body = whatsapp_body(&wamids("rate", 15));
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    receiver.wait_for(15, WAIT).await;
    // A burst of 5, then 10 more at 5 per second: about 2 s.
    let span = *arrivals(&receiver).last().expect("arrivals");
    assert!(span >= 1500, "15 deliveries at 5/s took only {span} ms");
}

#[actix_web::test]
async fn an_endpoints_max_in_flight_caps_its_concurrent_requests() {
    let (_storage, app) = app().await;
    let receiver = Receiver::start();
    receiver.answer_by_default(Reply::Slow(200, Duration::from_millis(300)));
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    app.endpoint(
        &key,
        json!({"url": receiver.url, "event_types": ["*"], "max_in_flight": 2}),
    )
    .await;
    let body = whatsapp_body(&wamids("inflight", 6));
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    receiver.wait_for(6, WAIT).await;
    // Two at a time, each held 300 ms: a third request starts only when one has finished.
    let at = arrivals(&receiver);
    for w in at.windows(3) {
        assert!(w[2] - w[0] >= 250, "three requests within 250 ms: {at:?}");
    }
}

#[actix_web::test]
async fn the_api_and_metrics_can_have_listeners_of_their_own_and_health_answers_on_each() {
    let storage = Storage::start();
    let mut settings = storage.settings();
    settings.api.listen = Some("127.0.0.1:0".parse().expect("addr"));
    settings.metrics.listen = Some("127.0.0.1:0".parse().expect("addr"));
    let app = hookd::startup::Application::build(settings)
        .await
        .expect("hookd starts");
    let base = |port: u16| format!("http://127.0.0.1:{port}");
    let public = base(app.port());
    let api = base(app.port_of(|s| s.api));
    let metrics = base(app.port_of(|s| s.metrics));
    assert!(public != api && api != metrics && public != metrics);
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());

    let client = reqwest::Client::new();
    let status = |url: String| {
        let client = client.clone();
        async move {
            client
                .get(url)
                .bearer_auth(ADMIN_KEY)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    for b in [&public, &api, &metrics] {
        assert_eq!(status(format!("{b}/health/ready")).await, 200, "{b}");
    }
    assert_eq!(status(format!("{public}/api/v1/stats")).await, 404);
    assert_eq!(status(format!("{public}/metrics")).await, 404);
    assert_eq!(status(format!("{api}/api/v1/stats")).await, 200);
    assert_eq!(status(format!("{api}/webhooks/test")).await, 404);
    assert_eq!(status(format!("{metrics}/metrics")).await, 200);
    assert_eq!(status(format!("{metrics}/api/v1/stats")).await, 404);
    let body = whatsapp_body(&["wamid.listeners".into()]);
    let res = client
        .post(format!("{public}/webhooks/test"))
        .header(
            "x-hub-signature-256",
            crate::helpers::sign(SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200, "webhooks stay on server.listen");
    handle.stop(true).await;
}

#[actix_web::test]
async fn a_wrong_method_on_a_real_route_is_405_naming_the_allowed_ones() {
    let (_storage, app) = app().await;
    let send = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(ADMIN_KEY)
            .send()
    };
    let res = send(reqwest::Method::PUT, "/api/v1/events")
        .await
        .expect("put");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    let res = send(reqwest::Method::DELETE, "/webhooks/test")
        .await
        .expect("delete");
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");
    let res = send(reqwest::Method::PUT, "/api/v1/endpoints/ep_1")
        .await
        .expect("put");
    assert_eq!(res.headers()["allow"], "GET, PATCH, DELETE");
    let res = send(reqwest::Method::GET, "/api/v1/nosuch")
        .await
        .expect("get");
    assert_eq!(res.status(), 404, "no such route at all");
}

#[actix_web::test]
async fn the_bearer_scheme_is_matched_whatever_its_letter_case() {
    let (_storage, app) = app().await;
    let res = app
        .client
        .get(format!("{}/api/v1/stats", app.base))
        .header("authorization", format!("bearer {ADMIN_KEY}"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 200);
}
