//! Client input the API must judge itself: ids and cursors, JSON field types, keys, and the
//! handshake's echo.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_KEY, TestApp, VERIFY_TOKEN, fixture_bodies};

use crate::helpers::fresh_app as app;

/// Failed storage calls of the read paths these requests take (the counter is process-wide;
/// no other test fails these ops).
async fn redis_errors(app: &TestApp) -> f64 {
    let text = app.metrics().await;
    text.lines()
        .filter(|l| l.starts_with("hookd_storage_errors_total"))
        .filter(|l| {
            [
                "fetch_events",
                "list_events",
                "list_dead",
                "list_quarantine",
                "list_rejected",
                "list_audit",
                "retry_delivery",
            ]
            .iter()
            .any(|op| l.contains(&format!("op=\"{op}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[actix_web::test]
async fn malformed_or_out_of_range_ids_and_cursors_are_400_never_a_storage_error() {
    let (_storage, app) = app().await;
    let (_, key) = app.tenant("acme").await;
    let before = redis_errors(&app).await;
    for (path, parameter) in [
        ("/api/v1/events/99999999999999999999-0", "id"),
        ("/api/v1/events/1-99999999999999999999", "id"),
        ("/api/v1/events/evt", "id"),
        ("/api/v1/events?cursor=99999999999999999999-0", "cursor"),
        ("/api/v1/dead?cursor=99999999999999999999-0", "cursor"),
        ("/api/v1/quarantine?cursor=1-99999999999999999999", "cursor"),
        ("/api/v1/rejected?cursor=x", "cursor"),
        ("/api/v1/audit?cursor=x", "cursor"),
        ("/api/v1/audit?cursor=99999999999999999999-0", "cursor"),
    ] {
        for k in [ADMIN_KEY, key.as_str()] {
            let (status, body) = app.call(Method::GET, path, k, None).await;
            if status == 401 {
                // Admin-only routes refuse the tenant key first.
                continue;
            }
            assert_eq!(status, 400, "{path}: {body}");
            assert_eq!(body["error"]["parameter"], parameter, "{path}: {body}");
        }
    }
    // Retrying a delivery of a malformed event id, on an endpoint the caller owns.
    let ep = app
        .endpoint(
            ADMIN_KEY,
            json!({"url": "https://example.com/hook", "event_types": ["*"]}),
        )
        .await;
    let retry = format!(
        "/api/v1/events/99999999999999999999-0/deliveries/{}/retry",
        ep["id"].as_str().expect("id")
    );
    let (status, body) = app.call(Method::POST, &retry, ADMIN_KEY, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["parameter"], "id", "{body}");
    let (status, _) = app
        .call(Method::GET, "/api/v1/events/1-0", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 404, "a well-formed id of nothing");
    assert_eq!(
        redis_errors(&app).await,
        before,
        "no storage error was raised"
    );
}

#[actix_web::test]
async fn a_json_field_of_the_wrong_type_is_422_naming_it() {
    let (_storage, app) = app().await;
    let (_, key) = app.tenant("acme").await;
    for (body, field) in [
        (
            json!({"url": "https://example.com", "event_types": [5]}),
            "event_types",
        ),
        (
            json!({"url": "https://example.com", "event_types": "whatsapp.*"}),
            "event_types",
        ),
        (
            json!({"url": "https://example.com", "event_types": ["*"], "rate_limit": -1}),
            "rate_limit",
        ),
        (
            json!({"url": "https://example.com", "event_types": ["*"], "max_in_flight": "x"}),
            "max_in_flight",
        ),
        (
            json!({"url": "http://example.invalid:99999/", "event_types": ["*"]}),
            "url",
        ),
        (
            json!({"url": "http://0xa9fea9fe/", "event_types": ["*"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com", "event_types": ["*"], "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, answer) = app
            .call(Method::POST, "/api/v1/endpoints", &key, Some(body.clone()))
            .await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    let res = app
        .client
        .post(format!("{}/api/v1/endpoints", app.base))
        .bearer_auth(&key)
        .body("{\"url\":")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 400, "broken JSON");
}

#[actix_web::test]
async fn the_event_type_catalogue_needs_a_key() {
    let (_storage, app) = app().await;
    let res = app
        .client
        .get(format!("{}/api/v1/event-types", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 401);
    let (_, key) = app.tenant("acme").await;
    let (status, _) = app
        .call(Method::GET, "/api/v1/event-types", &key, None)
        .await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn the_catalogue_serves_each_type_with_its_sample_and_the_data_a_receiver_gets() {
    let (_storage, app) = app().await;
    let (_, key) = app.tenant("acme").await;
    let (status, listed) = app
        .call(Method::GET, "/api/v1/event-types", &key, None)
        .await;
    assert_eq!(status, 200);
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), hookd::meta::catalogue::CATALOGUE.len());
    for t in items {
        let name = t["type"].as_str().expect("type");
        assert!(
            t["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}"
        );
        assert!(t["sample"]["entry"].is_array(), "{name}: a Meta body");
        assert!(!t["sample_data"].is_null(), "{name}: the event's data");
        assert!(["ids", "content"].contains(&t["dedup"]["by"].as_str().unwrap_or("")));
    }
    let (status, one) = app
        .call(
            Method::GET,
            "/api/v1/event-types/whatsapp.statuses",
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["field"], "messages");
    assert_eq!(one["sample_data"]["statuses"][0]["status"], "delivered");
    let (status, _) = app
        .call(Method::GET, "/api/v1/event-types/whatsapp.nope", &key, None)
        .await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn the_handshake_echo_is_never_sniffed_as_html() {
    let (_storage, app) = app().await;
    let url = format!(
        "{}/webhooks/test?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=%3Cscript%3E",
        app.base
    );
    let res = app.client.get(url).send().await.expect("sent");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let missing = format!("{}/webhooks/test?hub.mode=subscribe", app.base);
    assert_eq!(
        app.client.get(missing).send().await.expect("sent").status(),
        400
    );
}

#[actix_web::test]
async fn every_type_the_splitter_emits_is_in_the_catalogue() {
    let mut bodies: Vec<Vec<u8>> = fixture_bodies().into_iter().map(|(_, _, b)| b).collect();
    // Fields and kinds the fixtures lack, in Meta's documented shapes.
    for extra in [
        json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "flows", "value": {"event": "FLOW_STATUS_CHANGE", "flow_id": "1"}}]}]}),
        json!({"object": "whatsapp_business_account", "entry": [{"id": "W", "changes": [{"field": "account_review_update", "value": {"decision": "APPROVED"}}]}]}),
        json!({"object": "page", "entry": [{"id": "P", "time": 1, "changes": [{"field": "live_videos", "value": {"id": "1", "status": "live"}}]}]}),
        json!({"object": "instagram", "entry": [{"id": "I", "time": 1, "messaging": [{"sender": {"id": "u"}, "recipient": {"id": "I"}, "timestamp": 1, "message_edit": {"mid": "m", "text": "t", "num_edit": 1}}]}]}),
        json!({"object": "page", "entry": [{"id": "P", "time": 1}]}),
        json!({"object": "something_new", "entry": [{"id": "X", "time": 1}]}),
    ] {
        bodies.push(serde_json::to_vec(&extra).expect("json"));
    }
    let mut missing = std::collections::BTreeSet::new();
    for mut body in bodies {
        let Ok(split) = hookd::meta::split(&mut body) else {
            continue;
        };
        for e in split.events {
            if hookd::meta::catalogue::find(&e.event_type).is_none() {
                missing.insert(e.event_type);
            }
        }
    }
    assert!(missing.is_empty(), "not in the catalogue: {missing:?}");
}

#[actix_web::test]
async fn an_endpoint_read_from_the_api_can_be_written_back_unchanged() {
    let (_storage, app) = app().await;
    for owner in ["tenant", "admin"] {
        let key = match owner {
            "tenant" => app.tenant("acme").await.1,
            _ => ADMIN_KEY.to_string(),
        };
        let created = app
            .endpoint(
                &key,
                serde_json::json!({
                    "url": "http://127.0.0.1:9/hook",
                    "event_types": ["whatsapp.*"],
                    "timeout": "5s",
                    "retry_schedule": ["0s", "1m"],
                }),
            )
            .await;
        let id = created["id"].as_str().expect("id").to_string();
        let path = format!("/api/v1/endpoints/{id}");
        let (_, read) = app.call(reqwest::Method::GET, &path, &key, None).await;
        assert_eq!(read["timeout_ms"], 5000, "{read}");
        let (status, written) = app
            .call(reqwest::Method::PATCH, &path, &key, Some(read.clone()))
            .await;
        assert_eq!(status, 200, "{owner}: {written}");
        let strip = |mut v: serde_json::Value| {
            v.as_object_mut().map(|o| o.remove("updated_at"));
            v
        };
        assert_eq!(strip(written), strip(read), "{owner}: nothing changed");
    }
    // Both forms of a setting at once are a clear error.
    let key = ADMIN_KEY;
    let created = app
        .endpoint(
            key,
            serde_json::json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"]}),
        )
        .await;
    let path = format!("/api/v1/endpoints/{}", created["id"].as_str().unwrap_or(""));
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            &path,
            key,
            Some(serde_json::json!({"timeout": "5s", "timeout_ms": 5000})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "timeout_ms", "{body}");
}

#[actix_web::test]
async fn tenants_and_endpoints_are_listed_in_pages_with_has_more() {
    let (_storage, app) = app().await;
    for name in ["a", "b", "c"] {
        app.tenant(name).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/tenants?limit=2".to_string();
    loop {
        let page = app.api_json(&path).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        seen.extend(
            items
                .iter()
                .map(|t| t["name"].as_str().unwrap_or("").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(page["has_more"], true);
                path = format!("/api/v1/tenants?limit=2&cursor={c}");
            }
            None => {
                assert_eq!(page["has_more"], false);
                break;
            }
        }
    }
    assert_eq!(seen, ["a", "b", "c"]);
    let events = app.api_json("/api/v1/events").await;
    assert_eq!(events["has_more"], false, "{events}");
    let (status, _) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/endpoints?cursor=ep_nosuch",
            ADMIN_KEY,
            None,
        )
        .await;
    assert!(matches!(status, 400 | 422), "{status}");
}
