//! Tenants own Meta accounts: a tenant's endpoints receive only its own accounts' events,
//! whatever their filters say, and raw mode never forwards bytes of another tenant's account.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, SECRET, TestApp};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(20);
const PAGE_A: &str = "500000000000001";
const PAGE_B: &str = "500000000000002";

use crate::helpers::fresh_app as app;

/// A Messenger message to `page` (one entry).
fn page_entry(page: &str, mid: &str, text: &str) -> Value {
    json!({"id": page, "time": 1700000000000u64, "messaging": [{
        "sender": {"id": format!("psid-{mid}")}, "recipient": {"id": page},
        "timestamp": 1700000000000u64, "message": {"mid": mid, "text": text}
    }]})
}

fn page_body(entries: Vec<Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"object": "page", "entry": entries})).expect("json")
}

async fn assign(app: &TestApp, tenant: &str, accounts: &[&str]) -> (u16, Value) {
    app.call(
        Method::POST,
        &format!("/api/v1/tenants/{tenant}/accounts"),
        ADMIN_KEY,
        Some(json!({ "account_ids": accounts })),
    )
    .await
}

#[actix_web::test]
async fn a_tenants_catch_all_endpoint_receives_only_its_own_accounts_events() {
    let (_storage, app) = app().await;
    let (_, key_a) = app.tenant_owning("a", &[PAGE_A]).await;
    let (_, key_b) = app.tenant_owning("b", &[PAGE_B]).await;
    let (rx_a, rx_b) = (Receiver::start(), Receiver::start());
    app.endpoint(&key_a, json!({"url": rx_a.url, "event_types": ["*"]}))
        .await;
    // Naming B's page in A's filter gives A nothing of B's.
    app.endpoint(
        &key_a,
        json!({"url": rx_a.url, "event_types": ["*"], "account_ids": [PAGE_B]}),
    )
    .await;
    app.endpoint(&key_b, json!({"url": rx_b.url, "event_types": ["*"]}))
        .await;

    let bodies = [
        page_body(vec![page_entry(PAGE_A, "m.a", "to A")]),
        page_body(vec![page_entry(PAGE_B, "m.b", "to B")]),
        page_body(vec![page_entry("500000000000009", "m.c", "nobody's")]),
    ];
    for b in &bodies {
        assert_eq!(app.post_signed(b, SECRET).await.status(), 200);
    }
    app.wait_until_split(bodies.len() as u64).await;
    rx_a.wait_for(1, WAIT).await;
    rx_b.wait_for(1, WAIT).await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let accounts = |r: &Receiver| -> Vec<String> {
        r.received()
            .iter()
            .map(|x| x.json()["account_id"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(accounts(&rx_a), [PAGE_A]);
    assert_eq!(accounts(&rx_b), [PAGE_B]);

    // The events API agrees: A lists only its own event.
    let (_, list) = app.call(Method::GET, "/api/v1/events", &key_a, None).await;
    let listed: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["account_id"].as_str())
        .collect();
    assert_eq!(listed, [PAGE_A]);
}

#[actix_web::test]
async fn raw_mode_forwards_only_the_entries_of_the_endpoints_accounts_from_a_mixed_body() {
    let (_storage, app) = app().await;
    let (_, key_a) = app.tenant_owning("a", &[PAGE_A]).await;
    let (_, key_b) = app.tenant_owning("b", &[PAGE_B]).await;
    let (rx_a, rx_b) = (Receiver::start(), Receiver::start());
    let ep_a = app
        .endpoint(
            &key_a,
            json!({"url": rx_a.url, "raw": true, "event_types": ["messenger.*"], "account_ids": [PAGE_A]}),
        )
        .await;
    app.endpoint(
        &key_b,
        json!({"url": rx_b.url, "raw": true, "event_types": ["*"]}),
    )
    .await;
    let secret_a = ep_a["secret"].as_str().expect("secret");

    // Meta batches both pages of one app into one POST.
    let mixed = page_body(vec![
        page_entry(PAGE_A, "m.mixed.a", "hello A"),
        page_entry(PAGE_B, "m.mixed.b", "B's private message"),
    ]);
    assert_eq!(app.post_signed(&mixed, SECRET).await.status(), 200);
    let got_a = rx_a.wait_for(1, WAIT).await;
    let got_b = rx_b.wait_for(1, WAIT).await;

    let a = &got_a[0];
    assert_ne!(a.body, mixed, "never Meta's whole body");
    assert!(
        !String::from_utf8_lossy(&a.body).contains("B's private message"),
        "no byte of B's entry reaches A"
    );
    assert_eq!(a.header("x-hookd-body"), "filtered");
    let sent: Value = serde_json::from_slice(&a.body).expect("JSON");
    assert_eq!(sent["object"], "page");
    assert_eq!(sent["entry"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        sent["entry"][0]["messaging"][0]["message"]["mid"],
        "m.mixed.a"
    );
    // Signed by hookd with A's endpoint secret over the bytes sent.
    assert_eq!(
        hookd::meta::signature::verify(
            Some(a.header("x-hub-signature-256").as_bytes()),
            &a.body,
            &[secret_a.as_bytes()]
        ),
        Ok(())
    );
    let b: Value = serde_json::from_slice(&got_b[0].body).expect("JSON");
    assert_eq!(b["entry"][0]["id"], PAGE_B);
    assert_eq!(b["entry"].as_array().map(Vec::len), Some(1));

    // A body of A's page alone goes as Meta sent it.
    let own = page_body(vec![page_entry(PAGE_A, "m.own", "only A")]);
    assert_eq!(app.post_signed(&own, SECRET).await.status(), 200);
    let got_a = rx_a.wait_for(2, WAIT).await;
    assert_eq!(got_a[1].body, own);
    assert_eq!(got_a[1].header("x-hookd-body"), "original");
}

#[actix_web::test]
async fn an_account_belongs_to_one_tenant_until_the_admin_moves_it() {
    let (_storage, app) = app().await;
    let (a, key_a) = app.tenant_owning("a", &[PAGE_A, "WABA9"]).await;
    let (b, _) = app.tenant("b").await;

    let (status, body) = assign(&app, &b, &[PAGE_B, PAGE_A]).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(PAGE_A)
    );
    // All or nothing: B did not get PAGE_B either.
    let (_, tb) = app
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{b}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(tb["account_ids"], json!([]));

    // A tenant reads its own tenant with its accounts, not another's.
    let (status, ta) = app
        .call(Method::GET, &format!("/api/v1/tenants/{a}"), &key_a, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(ta["account_ids"], json!([PAGE_A, "WABA9"]));
    let (status, _) = app
        .call(Method::GET, &format!("/api/v1/tenants/{b}"), &key_a, None)
        .await;
    assert_eq!(status, 404);
    // Only the admin assigns accounts.
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{a}/accounts"),
            &key_a,
            Some(json!({"account_ids": [PAGE_B]})),
        )
        .await;
    assert_eq!(status, 401);

    let path = format!("/api/v1/tenants/{a}/accounts/{PAGE_A}");
    let (status, _) = app.call(Method::DELETE, &path, ADMIN_KEY, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call(Method::DELETE, &path, ADMIN_KEY, None).await;
    assert_eq!(status, 404);
    let (status, tb) = assign(&app, &b, &[PAGE_B, PAGE_A]).await;
    assert_eq!(status, 200, "{tb}");
    assert_eq!(tb["account_ids"], json!([PAGE_A, PAGE_B]));

    let (status, body) = assign(&app, &b, &["not an id"]).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("account_ids"))
    );
    let (status, _) = assign(&app, "t_missing", &[PAGE_B]).await;
    assert_eq!(status, 404);

    // The admin lists every tenant with its accounts.
    let (status, list) = app
        .call(Method::GET, "/api/v1/tenants", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200);
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["account_ids"], json!(["WABA9"]));
    let (status, _) = app.call(Method::GET, "/api/v1/tenants", &key_a, None).await;
    assert_eq!(status, 401);
}

#[actix_web::test]
async fn me_says_who_a_key_is_and_which_sources_there_are() {
    let storage = crate::helpers::Storage::start();
    let app = crate::helpers::TestApp::spawn(storage.settings()).await;
    let (tenant, key) = app.tenant_owning("acme", &["WABA1", "PN9"]).await;
    let (status, me) = app
        .call(reqwest::Method::GET, "/api/v1/me", &key, None)
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me,
        serde_json::json!({"role": "tenant", "tenant_id": tenant, "name": "acme",
            "account_ids": ["PN9", "WABA1"], "sources": ["test"]})
    );
    let (_, admin) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/me",
            crate::helpers::ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(
        admin,
        serde_json::json!({"role": "admin", "sources": ["test"]})
    );
    let (status, _) = app
        .call(reqwest::Method::GET, "/api/v1/me", "wrong-key", None)
        .await;
    assert_eq!(status, 401);
}
