//! The audit log through the API: every change is recorded with who made it, from where and
//! what it changed, never a secret; refused changes are recorded too; a tenant reads its
//! own records only.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, SECRET, TestApp, whatsapp_body};
use crate::receiver::Receiver;

const SECRET_ONE: &str = "whsec_YXVkaXQtdGVzdC1zZWNyZXQtb25lLTAxMjM0NTY3ODk=";
const SECRET_TWO: &str = "whsec_YXVkaXQtdGVzdC1zZWNyZXQtdHdvLTAxMjM0NTY3ODk=";
const HEADER_TOKEN: &str = "header-token-0042";

use crate::helpers::fresh_app as app;

/// `(status, body)`, asserting the status.
async fn expect(
    app: &TestApp,
    status: u16,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Value {
    let (got, body) = app.call(method, path, key, body).await;
    assert_eq!(got, status, "{path}: {body}");
    body
}

/// Every record `key` may read, oldest first.
async fn records(app: &TestApp, key: &str, query: &str) -> Vec<Value> {
    let body = expect(
        app,
        200,
        Method::GET,
        &format!("/api/v1/audit?limit=100{query}"),
        key,
        None,
    )
    .await;
    let mut items = body["items"].as_array().cloned().unwrap_or_default();
    items.reverse();
    items
}

fn summary(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (s("action"), s("actor"), s("outcome"))
        })
        .collect()
}

#[actix_web::test]
async fn every_change_through_the_api_is_recorded_with_who_where_and_what_never_a_secret() {
    let (storage, app) = app().await;
    let rx = Receiver::start();
    let tenant = expect(
        &app,
        201,
        Method::POST,
        "/api/v1/tenants",
        ADMIN_KEY,
        Some(json!({"name": "acme"})),
    )
    .await;
    let t = tenant["id"].as_str().expect("tenant id").to_string();
    let created_key = expect(
        &app,
        201,
        Method::POST,
        &format!("/api/v1/tenants/{t}/keys"),
        ADMIN_KEY,
        None,
    )
    .await;
    let (key, key_id) = (
        created_key["key"].as_str().expect("key").to_string(),
        created_key["id"].as_str().expect("key id").to_string(),
    );
    let accounts = format!("/api/v1/tenants/{t}/accounts");
    let assign = json!({"account_ids": ["WABA1"]});
    expect(&app, 200, Method::POST, &accounts, ADMIN_KEY, Some(assign)).await;
    let ep = expect(
        &app,
        201,
        Method::POST,
        "/api/v1/endpoints",
        &key,
        Some(json!({
            "url": rx.url, "event_types": ["*"], "secret": SECRET_ONE,
            "headers": {"Authorization": format!("Bearer {HEADER_TOKEN}")},
        })),
    )
    .await;
    let e = ep["id"].as_str().expect("endpoint id").to_string();
    let endpoint = format!("/api/v1/endpoints/{e}");
    let patch = json!({"description": "changed"});
    expect(&app, 200, Method::PATCH, &endpoint, &key, Some(patch)).await;
    let rotate = format!("{endpoint}/secret/rotate");
    let new_secret = json!({"secret": SECRET_TWO});
    expect(&app, 200, Method::POST, &rotate, &key, Some(new_secret)).await;
    let shown = expect(
        &app,
        200,
        Method::GET,
        &format!("{endpoint}/secret"),
        &key,
        None,
    )
    .await;
    assert_eq!(shown["secret"], SECRET_TWO);
    let test = json!({"type": "whatsapp.messages"});
    let sent = expect(
        &app,
        200,
        Method::POST,
        &format!("{endpoint}/test"),
        &key,
        Some(test),
    )
    .await;
    assert_eq!(sent["delivered"], true, "{sent}");

    // An event delivered, then delivered again by hand.
    let body = whatsapp_body(&["wamid.audit-1".to_string()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    let listed = app
        .get_until("/api/v1/events", &key, |b| b["items"][0]["id"].is_string())
        .await;
    let event = listed["items"][0]["id"]
        .as_str()
        .expect("event")
        .to_string();
    app.get_until(&format!("/api/v1/events/{event}"), &key, |b| {
        b["deliveries"][0]["status"] == "delivered"
    })
    .await;
    let retry = format!("/api/v1/events/{event}/deliveries/{e}/retry");
    expect(&app, 202, Method::POST, &retry, &key, None).await;
    rx.wait_for(3, Duration::from_secs(20)).await;

    // A dry run changes nothing and is not recorded; a replay is, before and after.
    let dry = json!({"dry_run": true});
    expect(
        &app,
        200,
        Method::POST,
        "/api/v1/dead/replay",
        &key,
        Some(dry),
    )
    .await;
    expect(
        &app,
        202,
        Method::POST,
        "/api/v1/dead/replay",
        &key,
        Some(json!({})),
    )
    .await;
    app.get_until(
        "/api/v1/audit?action=dead.replay&outcome=applied",
        &key,
        |b| b["items"][0]["changes"]["replayed"] == 0,
    )
    .await;
    let purge = "/api/v1/attempts?older_than=1d";
    expect(&app, 200, Method::DELETE, purge, &key, None).await;
    expect(&app, 204, Method::DELETE, &endpoint, &key, None).await;
    let release = format!("{accounts}/WABA1");
    expect(&app, 204, Method::DELETE, &release, ADMIN_KEY, None).await;
    let revoke = format!("/api/v1/tenants/{t}/keys/{key_id}");
    expect(&app, 204, Method::DELETE, &revoke, ADMIN_KEY, None).await;

    let all = records(&app, ADMIN_KEY, "").await;
    let expected: Vec<(&str, &str, &str)> = vec![
        ("tenant.create", "admin", "applied"),
        ("key.create", "admin", "applied"),
        ("account.assign", "admin", "applied"),
        ("endpoint.create", &key_id, "applied"),
        ("endpoint.update", &key_id, "applied"),
        ("endpoint.secret_rotate", &key_id, "applied"),
        ("endpoint.secret_reveal", &key_id, "applied"),
        ("endpoint.test", &key_id, "started"),
        ("endpoint.test", &key_id, "applied"),
        ("delivery.retry", &key_id, "applied"),
        ("dead.replay", &key_id, "started"),
        ("dead.replay", &key_id, "applied"),
        ("attempts.purge", &key_id, "started"),
        ("attempts.purge", &key_id, "applied"),
        ("endpoint.delete", &key_id, "applied"),
        ("account.release", "admin", "applied"),
        ("key.delete", "admin", "applied"),
    ];
    let expected: Vec<(String, String, String)> = expected
        .into_iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(summary(&all), expected);
    for r in &all {
        assert_eq!(r["tenant_id"], t.as_str(), "{r}");
        assert_eq!(r["address"], "127.0.0.1", "{r}");
        assert!(r["id"].is_string() && r["at"].as_u64().is_some(), "{r}");
    }
    let of = |action: &str| {
        all.iter()
            .find(|r| r["action"] == action)
            .cloned()
            .unwrap_or_else(|| panic!("no {action} record"))
    };
    let update = of("endpoint.update");
    assert_eq!(update["route"], "/api/v1/endpoints/{id}");
    assert_eq!(update["method"], "PATCH");
    assert_eq!(update["object_id"], e.as_str());
    assert_eq!(
        update["changes"],
        json!({"description": {"from": "", "to": "changed"}})
    );
    let create = of("endpoint.create");
    assert_eq!(create["changes"]["url"]["to"], rx.url.as_str());
    assert_eq!(create["changes"]["secret"]["to"], "[redacted]");
    assert_eq!(
        create["changes"]["headers"]["to"]["Authorization"],
        "[redacted]"
    );
    let rotated = of("endpoint.secret_rotate");
    assert_eq!(
        rotated["changes"]["secret"],
        json!({"from": "[redacted]", "to": "[redacted]"})
    );
    assert_eq!(of("key.create")["object_id"], key_id.as_str());
    // The end of work recorded in two steps names its start.
    let purges: Vec<&Value> = all
        .iter()
        .filter(|r| r["action"] == "attempts.purge")
        .collect();
    assert_eq!(purges[1]["changes"]["started_id"], purges[0]["id"]);
    assert_eq!(purges[1]["changes"]["older_than"], "1d");
    assert!(purges[1]["changes"]["deleted"].as_u64().is_some());
    let tests: Vec<&Value> = all
        .iter()
        .filter(|r| r["action"] == "endpoint.test")
        .collect();
    assert_eq!(tests[1]["changes"]["status"], 200);
    assert_eq!(of("delivery.retry")["changes"]["event_id"], event.as_str());
    assert_eq!(
        of("account.assign")["changes"]["account_ids"],
        json!(["WABA1"])
    );

    let text = serde_json::to_string(&all).expect("json");
    for secret in [SECRET_ONE, SECRET_TWO, HEADER_TOKEN, key.as_str()] {
        assert!(!text.contains(secret), "{secret} is in the audit log");
    }
    let raw = storage.raw_bytes(&app.prefix);
    for secret in [SECRET_ONE, SECRET_TWO, key.as_str()] {
        let found = raw.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "{secret} is stored in clear");
    }
}

#[actix_web::test]
async fn a_tenant_reads_only_its_own_records_and_refused_changes_are_recorded_without_values() {
    let (_storage, app) = app().await;
    let (a, key_a) = app.tenant("a").await;
    let (b, key_b) = app.tenant("b").await;
    let ep = app
        .endpoint(
            &key_a,
            json!({"url": "https://example.com/hook", "event_types": ["*"]}),
        )
        .await;
    let e = ep["id"].as_str().expect("endpoint id");
    // B tries A's endpoint, and an endpoint of its own with a URL hookd refuses.
    let steal = json!({"url": "https://leak-value.example.com/x"});
    let path = format!("/api/v1/endpoints/{e}");
    expect(&app, 404, Method::PATCH, &path, &key_b, Some(steal)).await;
    let bad = json!({"url": "ftp://bad-value.example.com", "event_types": ["*"]});
    expect(
        &app,
        422,
        Method::POST,
        "/api/v1/endpoints",
        &key_b,
        Some(bad),
    )
    .await;
    // A body hookd cannot read is refused before the handler runs, and recorded all the same.
    let unreadable = json!({"url": 5, "event_types": "bad-value"});
    let path = "/api/v1/endpoints";
    expect(&app, 422, Method::POST, path, &key_b, Some(unreadable)).await;

    let of_b = records(&app, &key_b, "").await;
    assert!(
        of_b.iter().all(|r| r["tenant_id"] == b.as_str()),
        "{of_b:?}"
    );
    let refused: Vec<&Value> = of_b.iter().filter(|r| r["outcome"] == "refused").collect();
    assert_eq!(refused.len(), 3, "{of_b:?}");
    assert_eq!(refused[0]["action"], "endpoint.update");
    assert_eq!(refused[0]["object_id"], e);
    assert_eq!(refused[0]["status"], 404);
    assert_eq!(refused[0]["error"], "not_found: endpoint");
    assert_eq!(refused[1]["action"], "endpoint.create");
    assert_eq!(refused[1]["status"], 422);
    assert_eq!(refused[1]["error"], "invalid: url");
    assert_eq!(refused[2]["action"], "endpoint.create");
    assert_eq!(refused[2]["error"], "invalid: event_types");
    let text = serde_json::to_string(&of_b).expect("json");
    assert!(!text.contains("leak-value") && !text.contains("bad-value"));

    let of_a = records(&app, &key_a, "").await;
    assert!(
        of_a.iter().all(|r| r["tenant_id"] == a.as_str()),
        "{of_a:?}"
    );
    assert!(of_a.iter().any(|r| r["action"] == "endpoint.create"));
    assert!(!of_a.iter().any(|r| r["outcome"] == "refused"));
    let (status, _) = app
        .call(
            Method::GET,
            &format!("/api/v1/audit?tenant_id={a}"),
            &key_b,
            None,
        )
        .await;
    assert_eq!(status, 400, "another tenant's records are not B's to read");
    // The admin reads any tenant's, and filters.
    let admin_view = records(&app, ADMIN_KEY, &format!("&tenant_id={b}&outcome=refused")).await;
    assert_eq!(admin_view.len(), 3);
    let kinds = records(&app, ADMIN_KEY, "&action=tenant.*").await;
    assert_eq!(kinds.len(), 2, "two tenants created");
    let (status, body) = app
        .call(Method::GET, "/api/v1/audit?outcome=maybe", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "outcome");
}
