//! What an unauthenticated sender can make hookd store is bounded: each rejection record, the
//! rejected list by bytes, the records per peer; and what a signed request stores beside its
//! body.

use crate::helpers::{SECRET, Storage, TestApp, whatsapp_body};

/// Sends `n` requests with a 60 KB signature header and a 100 KB body, all refused.
async fn flood(app: &TestApp, n: usize) {
    let header = format!("sha256={}", "a".repeat(60_000));
    let body = vec![b'x'; 100_000];
    for _ in 0..n {
        let res = app.post_with_header(&body, Some(&header)).await;
        assert_eq!(res.status(), 401);
    }
}

/// Waits until the rejected list stops growing; returns its length.
async fn settled_length(app: &TestApp) -> u64 {
    let mut last = u64::MAX;
    loop {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
        let page = app.api_json("/api/v1/rejected?limit=100").await;
        let n = page["items"].as_array().map_or(0, |a| a.len() as u64);
        if n == last {
            return n;
        }
        last = n;
    }
}

#[actix_web::test]
async fn a_flood_of_huge_bad_signatures_keeps_the_rejected_list_within_its_byte_bound() {
    let storage = Storage::start();
    let mut settings = storage.settings();
    settings.ingress.rejected_max_bytes = 64 * 1024;
    settings.ingress.rejected_per_peer_per_minute = 100_000;
    let app = TestApp::spawn(settings).await;
    flood(&app, 200).await;

    let kept = settled_length(&app).await;
    assert_eq!(kept, 32, "64 KiB holds 32 records of at most 2 KiB");
    if let Storage::Redis(redis) = &storage {
        // What Redis holds for the list, overhead included, stays near the bound.
        let used: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(format!("{}rejected", app.prefix))
            .arg("SAMPLES")
            .arg(0)
            .query(&mut redis.connection())
            .expect("memory usage");
        assert!(used <= 80 * 1024, "the list takes {used} bytes");
    }
    // Each record's fields are cut to their caps.
    let page = app.api_json("/api/v1/rejected?limit=5").await;
    for r in page["items"].as_array().expect("items") {
        assert_eq!(r["signature"].as_str().map(str::len), Some(256), "{r}");
        assert!(r["body_prefix"].as_str().map_or(0, str::len) <= 1024);
        assert_eq!(r["body_len"], 100_000);
    }
}

#[actix_web::test]
async fn one_peer_adds_at_most_its_budget_of_records_per_minute() {
    let storage = Storage::start();
    let mut settings = storage.settings();
    settings.ingress.rejected_per_peer_per_minute = 5;
    let app = TestApp::spawn(settings).await;
    for _ in 0..20 {
        let res = app.post_with_header(b"{}", Some("sha256=0000")).await;
        assert_eq!(res.status(), 401, "every refusal is still answered");
    }
    assert_eq!(settled_length(&app).await, 5);
}

#[actix_web::test]
async fn an_overlong_request_id_is_replaced_by_hookds_own() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let body = whatsapp_body(&["wamid.rid".into()]);
    let long = "r".repeat(10_000);
    let res = app
        .client
        .post(format!("{}/webhooks/test", app.base))
        .header("x-request-id", &long)
        .header(
            "x-hub-signature-256",
            hookd::meta::signature::sign(SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 200);
    let used = res.headers()["x-request-id"].to_str().expect("id");
    assert!(used.len() <= 128 && used != long, "{used}");
    app.wait_until_split(1).await;
    let events = app.api_json("/api/v1/events").await;
    assert_eq!(events["items"][0]["request_id"], used);
}

#[actix_web::test]
async fn a_request_with_two_signature_headers_is_refused() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let body = whatsapp_body(&["wamid.two".into()]);
    let good = hookd::meta::signature::sign(SECRET.as_bytes(), &body);
    for pair in [[good.as_str(), "sha256=00"], ["sha256=00", good.as_str()]] {
        let res = app
            .client
            .post(format!("{}/webhooks/test", app.base))
            .header("x-hub-signature-256", pair[0])
            .header("x-hub-signature-256", pair[1])
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        assert_eq!(res.status(), 401);
    }
    let stats = app.stats().await;
    assert_eq!(stats["received"], 0, "{stats}");
}

/// The address recorded for a refused request sent with `X-Forwarded-For: claimed`.
async fn recorded_address(trusted: &[&str], claimed: &str) -> String {
    let storage = Storage::start();
    let mut settings = storage.settings();
    settings.server.trusted_proxies = trusted.iter().map(|n| n.parse().expect("cidr")).collect();
    let app = TestApp::spawn(settings).await;
    let res = app
        .client
        .post(format!("{}/webhooks/test", app.base))
        .header("x-hub-signature-256", "sha256=00")
        .header("x-forwarded-for", claimed)
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 401);
    let page = app
        .get_until("/api/v1/rejected", crate::helpers::ADMIN_KEY, |v| {
            v["items"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    page["items"][0]["remote_addr"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_recorded_and_nobody_else_can_claim_one() {
    assert_eq!(
        recorded_address(&["127.0.0.1/32"], "198.51.100.7").await,
        "198.51.100.7"
    );
    assert_eq!(
        recorded_address(&[], "198.51.100.7").await,
        "127.0.0.1",
        "an untrusted sender's header is ignored"
    );
}
