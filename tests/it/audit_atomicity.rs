//! A change and its audit record are one atomic step (Redis): when the record cannot be
//! written, the change is refused and nothing of it is stored.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_KEY, Storage, TestApp};

#[actix_web::test]
async fn a_change_whose_audit_record_cannot_be_written_is_refused_and_not_made() {
    let storage = Storage::start();
    let Storage::Redis(redis) = &storage else {
        panic!("this binary runs on Redis");
    };
    let app = TestApp::spawn(storage.settings()).await;
    let (tenant, key) = app.tenant("acme").await;
    let mut conn = redis.connection();
    // A key of the wrong type where the audit stream belongs: every XADD to it fails.
    let audit_key = format!("{}audit", app.prefix);
    let _: () = redis::cmd("DEL")
        .arg(&audit_key)
        .query(&mut conn)
        .expect("DEL");
    let _: () = redis::cmd("SET")
        .arg(&audit_key)
        .arg("not a stream")
        .query(&mut conn)
        .expect("SET");

    let endpoint = json!({"url": "https://example.com/hook", "event_types": ["*"]});
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/endpoints",
            ADMIN_KEY,
            Some(endpoint.clone()),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = app
        .call(
            Method::POST,
            "/api/v1/tenants",
            ADMIN_KEY,
            Some(json!({"name": "b"})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let accounts = format!("/api/v1/tenants/{tenant}/accounts");
    let (status, body) = app
        .call(
            Method::POST,
            &accounts,
            ADMIN_KEY,
            Some(json!({"account_ids": ["A1"]})),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    let listed = app.api_json("/api/v1/endpoints").await;
    assert_eq!(listed["items"], json!([]), "no endpoint without its record");
    let tenants = app.api_json("/api/v1/tenants").await;
    assert_eq!(tenants["items"].as_array().map(Vec::len), Some(1));
    let owned = app.api_json(&format!("/api/v1/tenants/{tenant}")).await;
    assert_eq!(owned["account_ids"], json!([]));
    // The refusals themselves could not be recorded either: counted and logged.
    let metrics = app.metrics().await;
    let unrecorded: f64 = metrics
        .lines()
        .find(|l| l.starts_with("hookd_audit_unrecorded_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(unrecorded >= 3.0, "{unrecorded}");

    // With the audit log back, the same change goes through, recorded.
    let _: () = redis::cmd("DEL")
        .arg(&audit_key)
        .query(&mut conn)
        .expect("DEL");
    let created = app.endpoint(&key, endpoint).await;
    let records = app.api_json("/api/v1/audit?action=endpoint.create").await;
    assert_eq!(records["items"][0]["object_id"], created["id"]);
}
