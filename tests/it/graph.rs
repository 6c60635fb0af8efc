//! Subscription management through the Graph API, against [`FakeGraph`]: each call reaches
//! Meta's edge with the parameters and token its reference documents, Meta's handshake
//! reaches the source, errors and rate limits come back readable, every change is recorded
//! in the audit log, and no token is shown or stored in clear.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fake_graph::{APP_ID, Failure, FakeGraph, PAGE_TOKEN, SYSTEM_TOKEN, VERSION};
use crate::helpers::{ADMIN_KEY, SECRET, Storage, TestApp, VERIFY_TOKEN, free_port};

const WABA: &str = "102290129340398";
const PHONE_NUMBER: &str = "106540352242922";
const PAGE: &str = "4242424242";
const OTHER_TOKEN: &str = "another-sources-verify-token";

struct Setup {
    storage: Storage,
    app: TestApp,
    graph: FakeGraph,
    /// `{public_url}/webhooks/test`.
    callback: String,
}

/// hookd with source `test` holding Graph credentials, a second source `other` with its own
/// verify token and none, and `graph.public_url` naming where it listens.
async fn setup() -> Setup {
    let storage = Storage::start();
    let graph = FakeGraph::start(SECRET);
    let mut s = storage.settings();
    let port = free_port();
    s.server.listen = format!("127.0.0.1:{port}").parse().expect("addr");
    s.graph.base_url = graph.base.clone();
    s.graph.version = VERSION.into();
    s.graph.public_url = format!("http://127.0.0.1:{port}");
    let mut other = s.sources["test"].clone();
    other.verify_token = OTHER_TOKEN.into();
    s.sources.insert("other".into(), other);
    let test = s.sources.get_mut("test").expect("source test");
    test.graph.app_id = APP_ID.into();
    test.graph.access_token = SYSTEM_TOKEN.into();
    let app = TestApp::spawn(s).await;
    Setup {
        storage,
        app,
        graph,
        callback: format!("http://127.0.0.1:{port}/webhooks/test"),
    }
}

impl Setup {
    async fn check(&self, object: &str) -> (u16, Value) {
        let path = format!("/subscriptions/{object}/check");
        self.call(Method::POST, &path, None).await
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = format!("/api/v1/sources/test/graph{path}");
        self.app.call(method, &path, ADMIN_KEY, body).await
    }

    /// The audit records of `action`, oldest first.
    async fn audit(&self, action: &str) -> Vec<Value> {
        let (status, body) = self
            .app
            .call(
                Method::GET,
                &format!("/api/v1/audit?action={action}"),
                ADMIN_KEY,
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut items = body["items"].as_array().cloned().unwrap_or_default();
        items.reverse();
        items
    }

    fn assert_requests_as_documented(&self) {
        assert!(
            self.graph.problems().is_empty(),
            "{:?}",
            self.graph.problems()
        );
    }
}

#[actix_web::test]
async fn an_app_subscription_is_made_with_the_sources_callback_and_token_after_metas_handshake() {
    let t = setup().await;
    let (status, body) = t
        .call(
            Method::POST,
            "/subscriptions",
            Some(json!({"object": "page", "fields": ["feed", "messages"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    assert_eq!(t.graph.handshakes(), vec![(t.callback.clone(), true)]);
    assert_eq!(
        t.graph.subscription("page"),
        Some((t.callback.clone(), vec!["feed".into(), "messages".into()]))
    );

    let (status, listed) = t.call(Method::GET, "/subscriptions", None).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["expected_callback_url"], t.callback);
    assert_eq!(listed["items"][0]["object"], "page");
    assert_eq!(listed["items"][0]["callback_url"], t.callback);
    assert_eq!(listed["items"][0]["fields"][1]["name"], "messages");

    // Recorded before the call and after it, linked; no token anywhere in the log.
    let records = t.audit("graph.subscribe").await;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0]["outcome"], "started");
    assert_eq!(records[1]["outcome"], "applied");
    assert_eq!(records[1]["changes"]["started_id"], records[0]["id"]);
    assert_eq!(records[0]["changes"]["fields"], json!(["feed", "messages"]));
    let log = serde_json::to_string(&records).expect("json");
    assert!(!log.contains(VERIFY_TOKEN) && !log.contains(SECRET));
    t.assert_requests_as_documented();
}

#[actix_web::test]
async fn unsubscribing_removes_the_named_fields_or_the_whole_object() {
    let t = setup().await;
    t.graph.set_subscription(
        "whatsapp_business_account",
        &t.callback,
        &["messages", "flows"],
    );
    let (status, body) = t
        .call(
            Method::DELETE,
            "/subscriptions/whatsapp_business_account?fields=flows",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        t.graph.subscription("whatsapp_business_account"),
        Some((t.callback.clone(), vec!["messages".into()]))
    );
    let (status, _) = t
        .call(
            Method::DELETE,
            "/subscriptions/whatsapp_business_account",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(t.graph.subscription("whatsapp_business_account"), None);
    let (status, body) = t.call(Method::DELETE, "/subscriptions/user", None).await;
    assert_eq!(status, 400, "only the objects hookd receives: {body}");
    let outcomes: Vec<String> = t
        .audit("graph.unsubscribe")
        .await
        .iter()
        .map(|r| r["outcome"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        outcomes,
        ["started", "applied", "started", "applied", "refused"]
    );
    t.assert_requests_as_documented();
}

#[actix_web::test]
async fn the_check_tells_a_working_callback_from_a_wrong_token_an_unreachable_url_and_none() {
    let t = setup().await;

    // What Meta has reaches this source: verified, and this instance saw the handshake.
    t.graph.set_subscription("page", &t.callback, &["feed"]);
    let (status, ok) = t.check("page").await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["verdict"], "ok", "{ok}");
    assert_eq!(ok["handshake_seen"], true);
    assert_eq!(ok["handshake_source"], "test");
    assert_eq!(ok["callback_url_matches"], true);
    assert_eq!(ok["fields"], json!(["feed"]), "what is subscribed stays");
    assert_eq!(
        t.graph.subscription("page"),
        Some((t.callback.clone(), vec!["feed".into()]))
    );

    // Meta's URL points at another source of this hookd, whose verify token differs.
    let other = t.callback.replace("/webhooks/test", "/webhooks/other");
    t.graph.set_subscription("instagram", &other, &["comments"]);
    let (_, mismatch) = t.check("instagram").await;
    assert_eq!(mismatch["verdict"], "verify_token_mismatch", "{mismatch}");
    assert_eq!(mismatch["handshake_source"], "other");
    assert_eq!(mismatch["callback_url_matches"], false);
    assert_eq!(mismatch["graph_error"]["code"], 2200);

    // Meta's URL reaches nothing.
    let nowhere = format!("http://127.0.0.1:{}/webhooks/test", free_port());
    t.graph
        .set_subscription("whatsapp_business_account", &nowhere, &["messages"]);
    let (_, unreachable) = t.check("whatsapp_business_account").await;
    assert_eq!(
        unreachable["verdict"], "callback_unreachable",
        "{unreachable}"
    );
    assert_eq!(unreachable["handshake_seen"], false);

    // Nothing subscribed: nothing re-posted, nothing recorded.
    let t2 = setup().await;
    let (_, none) = t2
        .call(Method::POST, "/subscriptions/page/check", None)
        .await;
    assert_eq!(none["verdict"], "not_subscribed", "{none}");
    assert!(t2.audit("graph.check").await.is_empty());

    let records = t.audit("graph.check").await;
    let outcomes: Vec<&str> = records
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(
        outcomes,
        [
            "started", "applied", "started", "applied", "started", "applied"
        ]
    );
    t.assert_requests_as_documented();
}

#[actix_web::test]
async fn a_waba_and_a_phone_number_get_their_callback_override_and_read_it_back() {
    let t = setup().await;
    let waba = format!("/wabas/{WABA}/subscribed-apps");
    let (status, body) = t
        .call(
            Method::POST,
            &waba,
            Some(json!({"override_callback": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, apps) = t.call(Method::GET, &waba, None).await;
    assert_eq!(
        apps["data"][0]["override_callback_uri"], t.callback,
        "{apps}"
    );
    assert_eq!(apps["data"][0]["whatsapp_business_api_data"]["id"], APP_ID);

    // Without an override: subscribed, Meta's app callback in force.
    let (status, _) = t.call(Method::POST, &waba, Some(json!({}))).await;
    assert_eq!(status, 200);
    let (_, apps) = t.call(Method::GET, &waba, None).await;
    assert!(
        apps["data"][0].get("override_callback_uri").is_none(),
        "{apps}"
    );

    let (status, _) = t.call(Method::DELETE, &waba, None).await;
    assert_eq!(status, 200);
    let (_, apps) = t.call(Method::GET, &waba, None).await;
    assert_eq!(apps["data"], json!([]));

    let phone = format!("/phone-numbers/{PHONE_NUMBER}/webhook");
    let (status, body) = t.call(Method::PUT, &phone, Some(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (_, config) = t.call(Method::GET, &phone, None).await;
    assert_eq!(
        config["webhook_configuration"]["phone_number"], t.callback,
        "{config}"
    );

    let (status, body) = t
        .call(
            Method::POST,
            &waba,
            Some(json!({"callback_url": "not a url"})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "callback_url");
    let (status, _) = t
        .call(Method::GET, "/wabas/12ab/subscribed-apps", None)
        .await;
    assert_eq!(status, 400, "ids are digits");
    assert_eq!(
        t.audit("graph.waba_subscribe").await.len(),
        5,
        "two calls and a refusal"
    );
    assert_eq!(t.audit("graph.phone_number_callback").await.len(), 2);
    t.assert_requests_as_documented();
}

#[actix_web::test]
async fn page_subscriptions_use_the_stored_page_token_never_shown_nor_stored_in_clear() {
    let t = setup().await;
    let apps = format!("/pages/{PAGE}/subscribed-apps");
    let (status, body) = t
        .call(Method::POST, &apps, Some(json!({"fields": ["feed"]})))
        .await;
    assert_eq!(status, 409, "no token yet: {body}");
    assert_eq!(body["error"]["code"], "not_configured");

    let (status, stored) = t
        .call(
            Method::PUT,
            &format!("/pages/{PAGE}/token"),
            Some(json!({"access_token": PAGE_TOKEN})),
        )
        .await;
    assert_eq!(status, 200, "{stored}");
    let (_, pages) = t.call(Method::GET, "/pages", None).await;
    assert_eq!(pages["items"][0]["page_id"], PAGE);
    assert!(!pages.to_string().contains(PAGE_TOKEN));

    let (status, body) = t
        .call(
            Method::POST,
            &apps,
            Some(json!({"fields": ["feed", "messages"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, listed) = t.call(Method::GET, &apps, None).await;
    assert_eq!(
        listed["data"][0]["subscribed_fields"],
        json!(["feed", "messages"])
    );
    let (status, _) = t.call(Method::DELETE, &apps, None).await;
    assert_eq!(status, 200);

    let raw = t.storage.raw_bytes(&t.app.prefix);
    assert!(
        !raw.windows(PAGE_TOKEN.len())
            .any(|w| w == PAGE_TOKEN.as_bytes()),
        "the Page token is stored sealed"
    );
    let (_, log) = t
        .app
        .call(Method::GET, "/api/v1/audit?action=graph.*", ADMIN_KEY, None)
        .await;
    assert!(!log.to_string().contains(PAGE_TOKEN), "{log}");

    let (status, _) = t
        .call(Method::DELETE, &format!("/pages/{PAGE}/token"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = t
        .call(Method::DELETE, &format!("/pages/{PAGE}/token"), None)
        .await;
    assert_eq!(status, 404);
    let (status, _) = t.call(Method::GET, &apps, None).await;
    assert_eq!(status, 409);
    t.assert_requests_as_documented();
}

#[actix_web::test]
async fn graph_errors_come_back_readable_and_rate_limits_as_429_with_metas_wait() {
    let t = setup().await;
    let subscribe = || {
        t.call(
            Method::POST,
            "/subscriptions",
            Some(json!({"object": "page", "fields": ["feed"]})),
        )
    };
    t.graph.fail_next(Failure {
        status: 400,
        body: json!({"error": {"message": "(#100) Param fields must be non-empty", "type": "OAuthException",
                               "code": 100, "error_subcode": 1_349_125, "fbtrace_id": "AbCdEf123"}}),
        headers: vec![],
    });
    let (status, body) = subscribe().await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "graph_refused");
    let graph = &body["error"]["graph"];
    assert_eq!(graph["code"], 100);
    assert_eq!(graph["error_subcode"], 1_349_125);
    assert_eq!(graph["type"], "OAuthException");
    assert_eq!(graph["fbtrace_id"], "AbCdEf123");
    assert!(
        graph["message"]
            .as_str()
            .unwrap_or("")
            .contains("must be non-empty")
    );

    // The application limit (#4): no usage header, a minute by default.
    t.graph.fail_next(Failure {
        status: 403,
        body: json!({"error": {"message": "(#4) Application request limit reached", "type": "OAuthException", "code": 4, "fbtrace_id": "X"}}),
        headers: vec![],
    });
    let res = t
        .app
        .client
        .get(format!(
            "{}/api/v1/sources/test/graph/subscriptions",
            t.app.base
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "60");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"]["code"], "graph_rate_limited");
    assert_eq!(body["error"]["graph"]["code"], 4);

    // A WhatsApp Business Account's limit (#80007) with Meta's estimate, in minutes.
    let usage = json!({WABA: [{"type": "whatsapp_business_management", "call_count": 100,
        "total_cputime": 12, "total_time": 30, "estimated_time_to_regain_access": 5}]});
    t.graph.fail_next(Failure {
        status: 400,
        body: json!({"error": {"message": "(#80007) There have been too many calls to this WhatsApp Business account.",
                               "type": "OAuthException", "code": 80007, "fbtrace_id": "Y"}}),
        headers: vec![("x-business-use-case-usage", usage.to_string())],
    });
    let res = t
        .app
        .client
        .post(format!(
            "{}/api/v1/sources/test/graph/wabas/{WABA}/subscribed-apps",
            t.app.base
        ))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({}))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "300");

    // HTTP 429 itself.
    t.graph.fail_next(Failure {
        status: 429,
        body: json!({"error": {"message": "Too many requests", "code": 613, "type": "OAuthException"}}),
        headers: vec![("retry-after", "7".into())],
    });
    let (status, _) = subscribe().await;
    assert_eq!(status, 429);

    // A failure is recorded once, as the end of what was started.
    let records = t.audit("graph.subscribe").await;
    let outcomes: Vec<&str> = records
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["started", "failed", "started", "refused"]);
    assert_eq!(records[1]["changes"]["started_id"], records[0]["id"]);
    assert_eq!(
        records[1]["error"],
        "graph_refused: code 100 (OAuthException)"
    );
    t.assert_requests_as_documented();
}

#[actix_web::test]
async fn tenants_cannot_manage_subscriptions_and_missing_settings_are_named() {
    let t = setup().await;
    let (_, key) = t.app.tenant("acme").await;
    let (status, _) = t
        .app
        .call(
            Method::GET,
            "/api/v1/sources/test/graph/subscriptions",
            &key,
            None,
        )
        .await;
    assert_eq!(status, 403);

    let (status, body) = t
        .app
        .call(
            Method::GET,
            "/api/v1/sources/other/graph/subscriptions",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("sources.other.graph.app_id")
    );
    let (status, body) = t
        .app
        .call(
            Method::GET,
            &format!("/api/v1/sources/other/graph/wabas/{WABA}/subscribed-apps"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("sources.other.graph.access_token")
    );
    let (status, _) = t
        .app
        .call(
            Method::GET,
            "/api/v1/sources/nope/graph/subscriptions",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn an_unreachable_graph_api_is_a_502_that_says_so() {
    let storage = Storage::start();
    let mut s = storage.settings();
    s.graph.base_url = format!("http://127.0.0.1:{}", free_port());
    s.graph.public_url = "https://hooks.example.com".into();
    s.sources.get_mut("test").expect("test").graph.app_id = APP_ID.into();
    let app = TestApp::spawn(s).await;
    let (status, body) = app
        .call(
            Method::GET,
            "/api/v1/sources/test/graph/subscriptions",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "graph_unreachable");
}
