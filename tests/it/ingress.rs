//! The webhook endpoint: handshake, signatures, limits, quarantine.

use std::time::Duration;

use crate::helpers::{
    ADMIN_KEY, SECOND_SECRET, SECRET, Storage, TestApp, VERIFY_TOKEN, fixtures_dir, sign,
    whatsapp_body,
};

fn signature_vector() -> (Vec<u8>, String) {
    let dir = fixtures_dir().join("samples");
    let body = std::fs::read(dir.join("signature_vector_raw_body.bin")).expect("vector body");
    let text = std::fs::read_to_string(dir.join("signature_vector.txt")).expect("vector");
    let header = text
        .lines()
        .find_map(|l| l.strip_prefix("X-Hub-Signature-256   : "))
        .expect("vector header")
        .trim()
        .to_string();
    (body, header)
}

#[actix_web::test]
async fn metas_signature_vector_is_accepted_over_the_exact_bytes() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (body, header) = signature_vector();
    let res = app.post_with_header(&body, Some(&header)).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("x-journal-id").is_some());
}

#[actix_web::test]
async fn a_re_serialised_body_fails_the_signature_and_is_recorded() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (body, header) = signature_vector();
    // The negative control: the same JSON, re-serialised compactly with raw UTF-8.
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let reserialised = serde_json::to_vec(&value).expect("json");
    assert_ne!(reserialised, body);
    // Rejections are recorded in the background: each is waited for, so that they are
    // listed in the order they were made.
    let rejected = || async {
        let mut items = Vec::new();
        for _ in 0..100 {
            let page = app.api_json("/api/v1/rejected").await;
            items = page["items"].as_array().cloned().unwrap_or_default();
            if !items.is_empty() {
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        items
    };
    let res = app.post_with_header(&reserialised, Some(&header)).await;
    assert_eq!(res.status(), 401);
    assert_eq!(rejected().await.len(), 1);

    let missing = app.post_with_header(&body, None).await;
    assert_eq!(missing.status(), 401);
    let mut items = Vec::new();
    for _ in 0..100 {
        items = rejected().await;
        if items.len() == 2 {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let reasons: Vec<_> = items
        .iter()
        .map(|i| i["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(reasons, ["signature_missing", "signature_mismatch"]);
    assert_eq!(items[1]["body_len"], reserialised.len());
    assert_eq!(app.stats().await["rejected"], 2);
    assert_eq!(app.stats().await["received"], 0);
}

#[actix_web::test]
async fn a_body_signed_with_the_rotated_second_secret_is_accepted() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let body = crate::helpers::whatsapp_body(&["wamid.rot".into()]);
    assert_eq!(app.post_signed(&body, SECOND_SECRET).await.status(), 200);
    assert_eq!(
        app.post_signed(&body, "some_other_secret").await.status(),
        401
    );
}

#[actix_web::test]
async fn the_handshake_echoes_the_challenge_only_for_the_right_token() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let url = |token: &str, source: &str| {
        format!(
            "{}/webhooks/{source}?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444",
            app.base
        )
    };
    let ok = app
        .client
        .get(url(VERIFY_TOKEN, "test"))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain")
    );
    assert_eq!(ok.text().await.expect("text"), "1158201444");

    let wrong = app
        .client
        .get(url("nope", "test"))
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status(), 403);

    let unknown = app
        .client
        .get(url(VERIFY_TOKEN, "nosuch"))
        .send()
        .await
        .expect("get");
    assert_eq!(unknown.status(), 404);
}

#[actix_web::test]
async fn an_unknown_source_is_404() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let res = app
        .client
        .post(format!("{}/webhooks/nosuch", app.base))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 404);
}

#[actix_web::test]
async fn a_source_is_reached_whatever_the_letter_case_of_its_url() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let body = whatsapp_body(&["wamid.case".into()]);
    let res = app
        .client
        .post(format!("{}/webhooks/TEST", app.base))
        .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 200, "the source configured as `test`");
    let stats = app.wait_until_split(1).await;
    assert_eq!(stats["events"], 1);
    let events = app.api_json("/api/v1/events").await;
    assert_eq!(
        events["items"][0]["source"], "test",
        "stored under its name"
    );
}

#[actix_web::test]
async fn an_oversized_body_is_413_and_nothing_is_journaled() {
    let storage = Storage::start();
    let mut settings = storage.settings();
    settings.server.max_body_bytes = 64 * 1024;
    let app = TestApp::spawn(settings).await;
    let big = vec![b'x'; 64 * 1024 + 1];
    assert_eq!(app.post_signed(&big, SECRET).await.status(), 413);
    let fits = crate::helpers::whatsapp_body(&["wamid.fits".into()]);
    assert_eq!(app.post_signed(&fits, SECRET).await.status(), 200);
    assert_eq!(app.stats().await["received"], 1);
}

#[actix_web::test]
async fn the_admin_reprocesses_or_deletes_a_quarantined_body_and_a_tenant_cannot() {
    use reqwest::Method;
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let bad = b"{\"object\":\"page\",\"entry\":[{\"id\":";
    assert_eq!(app.post_signed(bad, SECRET).await.status(), 200);
    app.wait_until_split(1).await;
    let first = app.api_json("/api/v1/quarantine").await["items"][0]["id"]
        .as_str()
        .expect("quarantined")
        .to_string();

    let (_, tenant_key) = app.tenant("acme").await;
    let reprocess = format!("/api/v1/quarantine/{first}/reprocess");
    let (status, _) = app.call(Method::POST, &reprocess, &tenant_key, None).await;
    assert_eq!(status, 403);
    let (status, body) = app.call(Method::POST, &reprocess, ADMIN_KEY, None).await;
    assert_eq!(status, 202, "{body}");
    assert!(body["journal_id"].is_string());

    // Still not JSON: split again and quarantined again, under a new id, once.
    let page = app
        .get_until("/api/v1/quarantine", ADMIN_KEY, |p| {
            p["items"][0]["id"].as_str().is_some_and(|id| id != first)
        })
        .await;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["body"], String::from_utf8_lossy(bad).as_ref());
    let (status, _) = app.call(Method::POST, &reprocess, ADMIN_KEY, None).await;
    assert_eq!(status, 404, "the old id is gone");

    let second = format!(
        "/api/v1/quarantine/{}",
        items[0]["id"].as_str().unwrap_or("")
    );
    let (status, _) = app.call(Method::DELETE, &second, ADMIN_KEY, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call(Method::DELETE, &second, ADMIN_KEY, None).await;
    assert_eq!(status, 404);
    let (status, _) = app
        .call(Method::DELETE, "/api/v1/quarantine/bogus", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        app.api_json("/api/v1/quarantine").await["items"],
        serde_json::json!([])
    );
    let (_, log) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=quarantine.*&outcome=applied",
            ADMIN_KEY,
            None,
        )
        .await;
    let actions: Vec<&str> = log["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|r| r["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(actions, ["quarantine.delete", "quarantine.reprocess"]);
}

#[actix_web::test]
async fn signed_bad_json_is_accepted_and_quarantined_with_its_bytes() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let bad = b"{\"object\":\"page\",\"entry\":[{\"id\":";
    let not_envelope = b"{\"hello\":\"world\"}";
    assert_eq!(app.post_signed(bad, SECRET).await.status(), 200);
    assert_eq!(app.post_signed(not_envelope, SECRET).await.status(), 200);
    let stats = app.wait_until_split(2).await;
    assert_eq!(stats["quarantined"], 2);
    assert_eq!(stats["events"], 0);
    let page = app.api_json("/api/v1/quarantine").await;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2);
    // Newest first.
    assert_eq!(items[1]["body"], String::from_utf8_lossy(bad).as_ref());
    assert!(
        items[1]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON")
    );
    assert!(
        items[0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not a Meta webhook envelope")
    );
}
