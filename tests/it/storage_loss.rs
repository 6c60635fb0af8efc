//! Storage that lost data or keeps failing: the pipeline recovers by itself, says so, and
//! readiness tells the truth meanwhile.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    HookdProcess, RedisServer, SECRET, TestApp, test_settings, wait_ready, whatsapp_body,
};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(20);

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
    let app = TestApp::spawn(test_settings(&redis.url())).await;
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
    // A process of its own: the broken journal restarts the normalizer, and that restart must
    // not show in the metrics of the other tests' apps.
    let redis = RedisServer::start();
    let prefix = "ready:";
    let (_hookd, base) = HookdProcess::start_with(
        &redis.url(),
        prefix,
        "ready",
        &[("HOOKD_SERVER__STAGE_FAILURE_AFTER", "500ms")],
    )
    .await;
    let client = reqwest::Client::new();
    let ready = || {
        let (client, url) = (client.clone(), format!("{base}/health/ready"));
        async move {
            let res = client.get(url).send().await.expect("ready");
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.expect("json"))
        }
    };

    // Redis answers PING, but the journal key is of the wrong type: every read of the
    // normalizer fails.
    redis.break_journal(prefix);
    let deadline = std::time::Instant::now() + WAIT;
    let body = loop {
        let (status, body) = ready().await;
        if status == 503 {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readiness stayed 200: {body}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(body["storage"], "ok", "{body}");
    let stages: Vec<&str> = body["failing_stages"]
        .as_array()
        .expect("failing stages")
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .collect();
    assert!(stages.contains(&"normalizer"), "{body}");
    assert_eq!(body["stages"]["normalizer"]["state"], "failing", "{body}");
    let listed: Vec<&String> = body["stages"].as_object().expect("stages").keys().collect();
    for stage in [
        "dispatcher",
        "housekeeper",
        "ingress",
        "normalizer",
        "reclaimer",
        "retry_timer",
        "router",
    ] {
        assert!(
            listed.iter().any(|s| *s == stage),
            "{stage} missing: {body}"
        );
    }

    // Fixed: the group is recreated and readiness comes back.
    redis.mend_journal(prefix);
    wait_ready(&base).await;
    let (_, body) = ready().await;
    assert_eq!(body["stages"]["normalizer"]["state"], "ok", "{body}");
}

#[actix_web::test]
async fn a_full_journal_queue_answers_503_with_retry_after() {
    let redis = RedisServer::start();
    let mut settings = test_settings(&redis.url());
    settings.ingress.batch_max = 1;
    settings.ingress.queue_capacity = 1;
    settings.ingress.max_inflight_commits = 1;
    let app = TestApp::spawn(settings).await;
    // Redis stalls for a second: journal writes wait, and the queue fills.
    let url = redis.url();
    let stall = std::thread::spawn(move || {
        let mut conn = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("conn");
        // A script that spins for a second holds Redis (DEBUG SLEEP is disabled by default).
        let spin = "local t = redis.call('TIME') local start = t[1] * 1e6 + t[2] \
                    repeat t = redis.call('TIME') until t[1] * 1e6 + t[2] - start > 1e6 return 0";
        let _: i64 = redis::cmd("EVAL")
            .arg(spin)
            .arg(0)
            .query(&mut conn)
            .expect("spin");
    });
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    let sends = (0..20).map(|i| {
        let body = whatsapp_body(&[format!("wamid.full.{i}")]);
        let app = &app;
        async move {
            let res = app.post_signed(&body, SECRET).await;
            let status = res.status().as_u16();
            let retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (status, retry_after, res.text().await.unwrap_or_default())
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    stall.join().expect("stall");
    let full: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    assert!(!full.is_empty(), "a queue of 1 never filled");
    for (_, retry_after, text) in &full {
        assert_eq!(retry_after.as_deref(), Some("5"));
        assert!(text.contains("queue is full"), "{text}");
    }
    assert!(answers.iter().all(|a| matches!(a.0, 200 | 503)));
}
