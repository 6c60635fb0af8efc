//! The read API: authentication, filters, pagination, single events, health.

use std::collections::BTreeSet;

use crate::helpers::{ADMIN_KEY, SECRET, Storage, TestApp, fixtures_dir, whatsapp_body};

#[actix_web::test]
async fn the_api_refuses_requests_without_the_admin_key() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    for path in [
        "/api/v1/events",
        "/api/v1/stats",
        "/api/v1/quarantine",
        "/api/v1/rejected",
    ] {
        let none = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(none.status(), 401, "{path}");
        let wrong = app
            .client
            .get(format!("{}{path}", app.base))
            .bearer_auth("test-admin-key-0123456780")
            .send()
            .await
            .expect("get");
        assert_eq!(wrong.status(), 401, "{path}");
        let body: serde_json::Value = wrong.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
}

/// Every event id `query` lists, following `next_cursor` page by page with `limit`.
async fn walk_pages(app: &TestApp, query: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = format!("/api/v1/events?limit={limit}{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.api_json(&path).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= limit);
        seen.extend(
            items
                .iter()
                .map(|e| e["id"].as_str().unwrap_or("").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return seen,
        }
    }
    panic!(
        "{query}: still paging after 1000 pages: {} ids seen",
        seen.len()
    );
}

fn assert_newest_first_once(seen: &[String], expected: usize) {
    assert_eq!(seen.len(), expected, "{seen:?}");
    let mut sorted = seen.to_vec();
    sorted.sort_by_key(|id| {
        let (ms, seq) = id.split_once('-').expect("stream id");
        (
            ms.parse::<u64>().expect("ms"),
            seq.parse::<u64>().expect("seq"),
        )
    });
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>().len(),
        expected,
        "no repeats"
    );
}

#[actix_web::test]
async fn events_page_newest_first_with_a_cursor_until_the_last_page() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    for i in 0..7 {
        let body = whatsapp_body(&[format!("wamid.p{i}")]);
        assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    }
    app.wait_until_split(7).await;
    assert_newest_first_once(&walk_pages(&app, "", 3).await, 7);
}

#[actix_web::test]
async fn filtered_pages_list_batched_events_once_in_order() {
    // Index streams hold one entry per batch listing its events: pages must cut through those
    // entries and resume inside them.
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    for i in 0..5 {
        let wamids: Vec<String> = (0..7).map(|j| format!("wamid.b{i}.{j}")).collect();
        let body = whatsapp_body(&wamids);
        assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    }
    app.wait_until_split(5).await;
    let all = walk_pages(&app, "", 50).await;
    assert_newest_first_once(&all, 35);
    for query in [
        "&type=whatsapp.messages",
        "&platform=whatsapp",
        "&account_id=PN1",
        "&account_id=PN1&type=whatsapp.messages",
    ] {
        for limit in [1, 3, 7, 10, 50] {
            let seen = walk_pages(&app, query, limit).await;
            assert_newest_first_once(&seen, 35);
            assert_eq!(seen, all, "{query} limit {limit}");
        }
    }
    assert!(walk_pages(&app, "&account_id=PN2", 3).await.is_empty());
}

#[actix_web::test]
async fn events_filter_by_platform_type_account_and_time() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let samples = fixtures_dir().join("samples");
    for file in [
        "wa_message_text.json",
        "wa_status_delivered.json",
        "messenger_message_text.json",
        "page_feed_comment.json",
        "instagram_comment.json",
    ] {
        let body = std::fs::read(samples.join(file)).expect("fixture");
        assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    }
    app.wait_until_split(5).await;

    let types = |page: serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        types(app.api_json("/api/v1/events?platform=whatsapp").await),
        ["whatsapp.statuses", "whatsapp.messages"]
    );
    assert_eq!(
        types(app.api_json("/api/v1/events?type=page.feed").await),
        ["page.feed"]
    );
    assert_eq!(
        types(
            app.api_json("/api/v1/events?account_id=106540352242922&type=whatsapp.messages")
                .await
        ),
        ["whatsapp.messages"]
    );
    assert_eq!(
        types(
            app.api_json("/api/v1/events?account_id=17841430541631416")
                .await
        ),
        ["instagram.comments"]
    );
    assert_eq!(types(app.api_json("/api/v1/events").await).len(), 5);
    assert!(types(app.api_json("/api/v1/events?from=4102444800000").await).is_empty());
    assert!(types(app.api_json("/api/v1/events?to=946684800000").await).is_empty());

    let bad = app.api("/api/v1/events?platform=myspace").await;
    assert_eq!(bad.status(), 400);
    let bad = app.api("/api/v1/events?limit=0").await;
    assert_eq!(bad.status(), 400);
    let bad = app.api("/api/v1/events?cursor=nonsense").await;
    assert_eq!(bad.status(), 400);
    let bad = app.api("/api/v1/events?from=yesterday").await;
    assert_eq!(bad.status(), 400);
}

#[actix_web::test]
async fn one_event_is_returned_by_id_with_its_data_unknown_ids_are_404_and_malformed_ones_400() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let body =
        std::fs::read(fixtures_dir().join("samples/page_leadgen_official.json")).expect("fixture");
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    app.wait_until_split(1).await;
    let page = app.api_json("/api/v1/events?type=page.leadgen").await;
    let id = page["items"][1]["id"].as_str().expect("id").to_string();
    let event = app.api_json(&format!("/api/v1/events/{id}")).await;
    assert_eq!(event["type"], "page.leadgen");
    assert_eq!(event["account_id"], "153125381133");
    // Numeric ids keep every digit.
    assert_eq!(event["data"]["leadgen_id"].as_u64(), Some(123123123123));
    assert_eq!(app.api("/api/v1/events/1-0").await.status(), 404);
    assert_eq!(app.api("/api/v1/events/not-an-id").await.status(), 400);
}

#[actix_web::test]
async fn health_reports_ready_and_metrics_are_exported() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let live = app
        .client
        .get(format!("{}/health/live", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(live.status(), 200);
    let ready = app
        .client
        .get(format!("{}/health/ready", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(ready.status(), 200);
    let body = whatsapp_body(&["wamid.m".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    app.wait_until_split(1).await;
    let metrics = app.metrics().await;
    for name in [
        "hookd_ingress_requests_total",
        "hookd_ingress_request_duration_seconds_bucket",
        "hookd_journal_commit_batch_size_bucket",
        "hookd_events_total",
        "hookd_storage_operation_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
}

#[actix_web::test]
async fn an_event_is_found_by_the_webhook_id_its_receiver_got() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let (receiver, _, _) = crate::receiver::catch_all(&app).await;
    app.post_signed(&whatsapp_body(&["wamid.byhook".into()]), SECRET)
        .await;
    let got = receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    let webhook_id = got[0].headers["webhook-id"].clone();
    assert!(webhook_id.starts_with("evt_"), "{webhook_id}");
    let res = app.api(&format!("/api/v1/events/{webhook_id}")).await;
    assert_eq!(res.status(), 200);
    let event: serde_json::Value = res.json().await.expect("json");
    assert_eq!(
        format!("evt_{}", event["id"].as_str().unwrap_or("")),
        webhook_id
    );
}

#[actix_web::test]
async fn a_create_retried_with_its_idempotency_key_is_done_once_and_answered_the_same() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let post = |key: &'static str, name: &'static str| {
        app.client
            .post(format!("{}/api/v1/tenants", app.base))
            .bearer_auth(crate::helpers::ADMIN_KEY)
            .header("idempotency-key", key)
            .json(&serde_json::json!({ "name": name }))
            .send()
    };
    let first = post("create-acme-1", "acme").await.expect("post");
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.expect("json");
    let again = post("create-acme-1", "acme").await.expect("post");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again, first, "the first answer, again");
    let other = post("create-acme-2", "acme").await.expect("post");
    assert_eq!(other.status(), 201, "another key is another request");
    let tenants = app.api_json("/api/v1/tenants").await;
    assert_eq!(
        tenants["items"].as_array().map(Vec::len),
        Some(2),
        "{tenants}"
    );
}

#[actix_web::test]
async fn the_admin_deletes_an_event_for_everyone_and_metas_resend_is_still_a_duplicate() {
    use reqwest::Method;
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let body = whatsapp_body(&["wamid.del-1".into(), "wamid.del-2".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    app.wait_until_split(1).await;
    let listed = app.api_json("/api/v1/events").await;
    let (kept, gone) = (
        listed["items"][0]["id"].as_str().expect("id").to_string(),
        listed["items"][1]["id"].as_str().expect("id").to_string(),
    );

    let (_, tenant_key) = app.tenant("acme").await;
    let path = format!("/api/v1/events/evt_{gone}");
    let (status, _) = app.call(Method::DELETE, &path, &tenant_key, None).await;
    assert_eq!(status, 403);
    let (status, _) = app.call(Method::DELETE, &path, ADMIN_KEY, None).await;
    assert_eq!(status, 204, "by the webhook-id its receivers got");
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/events/{gone}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.call(Method::DELETE, &path, ADMIN_KEY, None).await;
    assert_eq!(status, 404);
    for query in [
        "",
        "&type=whatsapp.messages",
        "&account_id=PN1",
        "&platform=whatsapp",
    ] {
        let ids = walk_pages(&app, query, 10).await;
        assert_eq!(ids, std::slice::from_ref(&kept), "{query}");
    }

    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    let stats = app.wait_until_split(2).await;
    assert_eq!(
        stats["duplicates"], 2,
        "both events of Meta's resend are recognised"
    );
    assert_eq!(walk_pages(&app, "", 10).await, [kept]);
    let (_, log) = app
        .call(
            Method::GET,
            "/api/v1/audit?action=event.delete&outcome=applied",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(log["items"][0]["object_id"], gone.as_str(), "{log}");
    assert_eq!(log["items"][0]["outcome"], "applied");
}
