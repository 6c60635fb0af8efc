//! Storage that lost data or keeps failing: the pipeline recovers by itself, says so, and
//! readiness tells the truth meanwhile.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{RedisServer, SECRET, TestApp, test_settings, whatsapp_body};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(20);

async fn delivering_app(
    redis: &RedisServer,
    settings_fix: impl FnOnce(&mut hookd::config::Settings),
) -> TestApp {
    let mut settings = test_settings(&redis.url());
    settings_fix(&mut settings);
    TestApp::spawn(settings).await
}

async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[actix_web::test]
async fn a_redis_restarted_empty_under_a_running_hookd_delivers_the_next_webhook_without_a_restart()
{
    let mut redis = RedisServer::start();
    let app = delivering_app(&redis, |_| {}).await;
    let receiver = Receiver::start();
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    app.endpoint(&key, json!({"url": receiver.url, "event_types": ["*"]}))
        .await;
    let body = whatsapp_body(&["wamid.before".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    receiver.wait_for(1, WAIT).await;

    // Redis comes back empty on the same port: groups, endpoints and tenants are gone.
    redis.restart();
    assert_eq!(
        redis::cmd("DBSIZE")
            .query::<u64>(&mut redis.connection())
            .expect("dbsize"),
        0
    );
    // Once hookd is ready again, the operator recreates the configuration through the API
    // (it was lost with Redis).
    crate::helpers::wait_ready(&app.base).await;
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    app.endpoint(&key, json!({"url": receiver.url, "event_types": ["*"]}))
        .await;
    let body = whatsapp_body(&["wamid.after".into()]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        if app.post_signed(&body, SECRET).await.status() == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "ingress never recovered"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = |r: &crate::receiver::Received| r.json()["data"]["messages"][0]["id"].clone();
    let deadline = std::time::Instant::now() + WAIT;
    while !receiver
        .received()
        .iter()
        .any(|r| delivered(r) == "wamid.after")
    {
        let seen: Vec<_> = receiver.received().iter().map(delivered).collect();
        assert!(
            std::time::Instant::now() < deadline,
            "the webhook sent after the loss was never delivered: {seen:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metric(&app, "hookd_storage_data_lost_total").await >= 1.0,
        "the loss is counted"
    );
    app.stop().await;
}

#[actix_web::test]
async fn readiness_fails_while_a_stage_cannot_use_its_storage_and_recovers_after() {
    let redis = RedisServer::start();
    let app = delivering_app(&redis, |s| {
        s.server.stage_failure_after = Duration::from_millis(500);
    })
    .await;
    let ready = |app: &TestApp| {
        let url = format!("{}/health/ready", app.base);
        let client = app.client.clone();
        async move {
            let res = client.get(url).send().await.expect("ready");
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.expect("json"))
        }
    };
    assert_eq!(ready(&app).await.0, 200);

    // Redis answers PING, but the journal key is of the wrong type: every read of the
    // normalizer fails.
    let inbound = format!("{}inbound", app.prefix);
    let mut conn = redis.connection();
    redis::pipe()
        .cmd("DEL")
        .arg(&inbound)
        .cmd("SET")
        .arg(&inbound)
        .arg("not a stream")
        .query::<()>(&mut conn)
        .expect("break the journal");
    let deadline = std::time::Instant::now() + WAIT;
    let body = loop {
        let (status, body) = ready(&app).await;
        if status == 503 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readiness stayed 200: {body}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["redis"], "ok", "{body}");
    let stages: Vec<&str> = body["failing_stages"]
        .as_array()
        .expect("failing stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert!(stages.contains(&"normalizer"), "{body}");

    // Fixed: the group is recreated and readiness comes back.
    redis::cmd("DEL")
        .arg(&inbound)
        .query::<()>(&mut conn)
        .expect("fix");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (status, body) = ready(&app).await;
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never ready again: {body}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
