//! A stand-in for Meta's Graph API, started by the tests. It checks each request's method,
//! path, parameters and token as Meta's reference documents them, answers with Meta's
//! documented shapes, and, like Meta, runs the verification handshake against a callback URL
//! before it accepts a subscription. A request that is not what the reference says is
//! answered with a Graph error and kept in `problems`, which every test asserts empty.
//!
//! The shapes, by the page each comes from:
//! - `/{app-id}/subscriptions` (GET, POST `object`/`callback_url`/`fields`/`verify_token`,
//!   DELETE `object`[/`fields`]; app access token; `{"data":[{object, callback_url, active,
//!   fields:[{name, version}]}]}`, `{"success": true}`):
//!   <https://developers.facebook.com/docs/graph-api/reference/app/subscriptions/> and
//!   <https://developers.facebook.com/docs/graph-api/webhooks/subscriptions-edge>;
//!   the handshake (`hub.mode=subscribe`, `hub.challenge`, `hub.verify_token`, echo the
//!   challenge): <https://developers.facebook.com/docs/graph-api/webhooks/getting-started>.
//! - `/{waba-id}/subscribed_apps` (GET with `override_callback_uri` per app, POST with an
//!   optional JSON `override_callback_uri` + `verify_token`, DELETE) and a phone number's
//!   `webhook_configuration` (POST `{"webhook_configuration": {override_callback_uri,
//!   verify_token}}`, GET `?fields=webhook_configuration`): system-user token;
//!   <https://developers.facebook.com/docs/whatsapp/embedded-signup/webhooks/override>.
//! - `/{page-id}/subscribed_apps` (GET `{"data":[{name, id, subscribed_fields}]}`, POST
//!   `subscribed_fields`, DELETE; Page access token):
//!   <https://developers.facebook.com/docs/graph-api/reference/page/subscribed_apps/>.
//! - Errors (`{"error": {message, type, code, error_subcode, fbtrace_id}}`):
//!   <https://developers.facebook.com/docs/graph-api/guides/error-handling>; throttling (`#4`,
//!   `#80007`, HTTP 429, `X-Business-Use-Case-Usage` with `estimated_time_to_regain_access`
//!   in minutes): <https://developers.facebook.com/docs/graph-api/overview/rate-limiting>.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

pub const VERSION: &str = "v25.0";
pub const APP_ID: &str = "1234567890";
pub const SYSTEM_TOKEN: &str = "EAAG-system-user-token";
pub const PAGE_TOKEN: &str = "EAAP-page-token-of-4242";

/// A scripted failure: the next Graph call is answered with it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
}

#[derive(Default)]
struct State {
    app_token: String,
    /// object → (callback URL, fields).
    subscriptions: BTreeMap<String, (String, Vec<String>)>,
    /// WABA → its override, if any.
    waba_apps: BTreeMap<String, Option<String>>,
    phone_overrides: BTreeMap<String, String>,
    page_apps: BTreeMap<String, Vec<String>>,
    failures: VecDeque<Failure>,
    /// Requests that did not match the reference.
    problems: Vec<String>,
    /// Handshakes made, with whether they passed.
    handshakes: Vec<(String, bool)>,
}

pub struct FakeGraph {
    pub base: String,
    state: Arc<Mutex<State>>,
}

fn graph_error(status: u16, code: i64, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status")).json(
        json!({"error": {"message": message, "type": "OAuthException", "code": code,
                         "fbtrace_id": "AxFakeTrace01"}}),
    )
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

impl FakeGraph {
    /// Starts on a free port in a thread of its own. `app_secret` makes the app access token
    /// it expects (`{app_id}|{app_secret}`).
    pub fn start(app_secret: &str) -> FakeGraph {
        let state = Arc::new(Mutex::new(State {
            app_token: format!("{APP_ID}|{app_secret}"),
            ..State::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake graph");
        let port = listener.local_addr().expect("addr").port();
        let shared = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::new(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(handle))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)
                .expect("listen")
                .run();
                let _ = server.await;
            });
        });
        FakeGraph {
            base: format!("http://127.0.0.1:{port}"),
            state,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("fake graph state"))
    }

    /// Answers the next call with `failure`.
    pub fn fail_next(&self, failure: Failure) {
        self.with(|s| s.failures.push_back(failure));
    }

    /// What Meta has on record for `object`, set directly (as if done in the App Dashboard).
    pub fn set_subscription(&self, object: &str, callback_url: &str, fields: &[&str]) {
        self.with(|s| {
            s.subscriptions.insert(
                object.into(),
                (
                    callback_url.into(),
                    fields.iter().map(|f| f.to_string()).collect(),
                ),
            )
        });
    }

    pub fn subscription(&self, object: &str) -> Option<(String, Vec<String>)> {
        self.with(|s| s.subscriptions.get(object).cloned())
    }

    pub fn handshakes(&self) -> Vec<(String, bool)> {
        self.with(|s| s.handshakes.clone())
    }

    pub fn problems(&self) -> Vec<String> {
        self.with(|s| s.problems.clone())
    }
}

async fn handle(
    state: web::Data<Arc<Mutex<State>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let path = req.path().to_string();
    let method = req.method().as_str().to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let problem = |what: String| {
        state
            .lock()
            .expect("state")
            .problems
            .push(format!("{method} {path}: {what}"));
        graph_error(400, 100, &format!("(#100) {what}"))
    };
    let Some(rest) = path.strip_prefix(&format!("/{VERSION}/")) else {
        return problem(format!("not under /{VERSION}/"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let failure = state.lock().expect("state").failures.pop_front();
    if let Some(f) = failure {
        let mut res =
            HttpResponse::build(actix_web::http::StatusCode::from_u16(f.status).expect("status"));
        for (name, value) in f.headers {
            res.insert_header((name, value));
        }
        return res.json(f.body);
    }
    let token = |expected: &str| auth == format!("Bearer {expected}");
    match (method.as_str(), parts.as_slice()) {
        (_, [app, "subscriptions"]) => {
            let app_token = state.lock().expect("state").app_token.clone();
            if *app != APP_ID || !token(&app_token) {
                return graph_error(
                    400,
                    190,
                    "(#190) Invalid OAuth access token - Cannot parse access token",
                );
            }
            match method.as_str() {
                "GET" => {
                    let s = state.lock().expect("state");
                    let data: Vec<Value> = s
                        .subscriptions
                        .iter()
                        .map(|(object, (url, fields))| {
                            let fields: Vec<Value> = fields
                                .iter()
                                .map(|f| json!({"name": f, "version": VERSION}))
                                .collect();
                            json!({"object": object, "callback_url": url, "active": true, "fields": fields})
                        })
                        .collect();
                    HttpResponse::Ok().json(json!({ "data": data }))
                }
                "POST" => {
                    if !content_type.starts_with("application/x-www-form-urlencoded") {
                        return problem(format!("parameters as {content_type:?}"));
                    }
                    let p = form(&body);
                    for required in ["object", "callback_url", "fields", "verify_token"] {
                        if p.get(required).is_none_or(String::is_empty) {
                            return problem(format!("no {required}"));
                        }
                    }
                    let (url, token) = (p["callback_url"].clone(), p["verify_token"].clone());
                    if !handshake(&state, &url, &token).await {
                        return graph_error(
                            400,
                            2200,
                            "(#2200) Callback verification failed with the following errors: HTTP Status Code = 403",
                        );
                    }
                    let fields = p["fields"].split(',').map(str::to_string).collect();
                    state
                        .lock()
                        .expect("state")
                        .subscriptions
                        .insert(p["object"].clone(), (url, fields));
                    HttpResponse::Ok().json(json!({"success": true}))
                }
                "DELETE" => {
                    let q = query(&req);
                    let Some(object) = q.get("object") else {
                        return problem("no object".into());
                    };
                    let mut s = state.lock().expect("state");
                    match q.get("fields") {
                        Some(fields) => {
                            if let Some((_, have)) = s.subscriptions.get_mut(object) {
                                have.retain(|f| !fields.split(',').any(|x| x == f));
                            }
                        }
                        None => {
                            s.subscriptions.remove(object);
                        }
                    }
                    HttpResponse::Ok().json(json!({"success": true}))
                }
                _ => problem("method".into()),
            }
        }
        // The tests' WhatsApp Business Account ids start with 1, their Page ids with 4.
        (_, [waba, "subscribed_apps"]) if waba.starts_with('1') => {
            if !token(SYSTEM_TOKEN) {
                return graph_error(400, 190, "(#190) Invalid OAuth access token");
            }
            let waba = waba.to_string();
            match method.as_str() {
                "GET" => {
                    let s = state.lock().expect("state");
                    let data: Vec<Value> = s
                        .waba_apps
                        .get(&waba)
                        .map(|o| {
                            let mut app = json!({"whatsapp_business_api_data": {
                                "id": APP_ID, "link": "https://www.facebook.com/games/?app_id=1234567890",
                                "name": "Lucky Shrub"}});
                            if let Some(url) = o {
                                app["override_callback_uri"] = json!(url);
                            }
                            vec![app]
                        })
                        .unwrap_or_default();
                    HttpResponse::Ok().json(json!({ "data": data }))
                }
                "POST" => {
                    let mut over = None;
                    if !body.is_empty() {
                        let Ok(b) = serde_json::from_slice::<Value>(&body) else {
                            return problem("a body that is not JSON".into());
                        };
                        let url = b["override_callback_uri"]
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        let token = b["verify_token"].as_str().unwrap_or("").to_string();
                        if url.is_empty() || token.is_empty() || url.len() > 200 {
                            return problem(
                                "override_callback_uri and verify_token are both required".into(),
                            );
                        }
                        if !handshake(&state, &url, &token).await {
                            return graph_error(400, 2200, "(#2200) Callback verification failed");
                        }
                        over = Some(url);
                    }
                    state.lock().expect("state").waba_apps.insert(waba, over);
                    HttpResponse::Ok().json(json!({"success": true}))
                }
                "DELETE" => {
                    state.lock().expect("state").waba_apps.remove(&waba);
                    HttpResponse::Ok().json(json!({"success": true}))
                }
                _ => problem("method".into()),
            }
        }
        (_, [page, "subscribed_apps"]) if page.starts_with('4') => {
            if !token(PAGE_TOKEN) {
                return graph_error(
                    400,
                    190,
                    "(#190) This method must be called with a Page Access Token",
                );
            }
            let page = page.to_string();
            match method.as_str() {
                "GET" => {
                    let s = state.lock().expect("state");
                    let data: Vec<Value> = s
                        .page_apps
                        .get(&page)
                        .map(|fields| vec![json!({"name": "Lucky Shrub", "id": APP_ID, "subscribed_fields": fields})])
                        .unwrap_or_default();
                    HttpResponse::Ok().json(json!({ "data": data }))
                }
                "POST" => {
                    let p = form(&body);
                    let Some(fields) = p.get("subscribed_fields") else {
                        return problem("no subscribed_fields".into());
                    };
                    let fields = fields.split(',').map(str::to_string).collect();
                    state.lock().expect("state").page_apps.insert(page, fields);
                    HttpResponse::Ok().json(json!({"success": true}))
                }
                "DELETE" => {
                    state.lock().expect("state").page_apps.remove(&page);
                    HttpResponse::Ok().json(json!({"success": true}))
                }
                _ => problem("method".into()),
            }
        }
        (_, [number]) => {
            if !token(SYSTEM_TOKEN) {
                return graph_error(400, 190, "(#190) Invalid OAuth access token");
            }
            let number = number.to_string();
            match method.as_str() {
                "GET" => {
                    if query(&req).get("fields").map(String::as_str)
                        != Some("webhook_configuration")
                    {
                        return problem("fields=webhook_configuration expected".into());
                    }
                    let s = state.lock().expect("state");
                    let mut config = json!({"application": "https://app.example/webhooks"});
                    if let Some(url) = s.phone_overrides.get(&number) {
                        config["phone_number"] = json!(url);
                    }
                    HttpResponse::Ok().json(json!({"webhook_configuration": config, "id": number}))
                }
                "POST" => {
                    let Ok(b) = serde_json::from_slice::<Value>(&body) else {
                        return problem("a body that is not JSON".into());
                    };
                    let c = &b["webhook_configuration"];
                    let url = c["override_callback_uri"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let token = c["verify_token"].as_str().unwrap_or("").to_string();
                    if url.is_empty() || token.is_empty() {
                        return problem(
                            "webhook_configuration needs override_callback_uri and verify_token"
                                .into(),
                        );
                    }
                    if !handshake(&state, &url, &token).await {
                        return graph_error(400, 2200, "(#2200) Callback verification failed");
                    }
                    state
                        .lock()
                        .expect("state")
                        .phone_overrides
                        .insert(number, url);
                    HttpResponse::Ok().json(json!({"success": true}))
                }
                _ => problem("method".into()),
            }
        }
        _ => problem("no such edge".into()),
    }
}

/// Meta's verification request: GET the callback with a challenge, expect it echoed.
async fn handshake(state: &web::Data<Arc<Mutex<State>>>, url: &str, token: &str) -> bool {
    let challenge = format!("{}", std::process::id() as u64 * 7919 + 1_158_201_444);
    let mut u = match url::Url::parse(url) {
        Ok(u) => u,
        Err(_) => return false,
    };
    u.query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", &challenge)
        .append_pair("hub.verify_token", token);
    let passed = match reqwest::Client::new()
        .get(u)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
    {
        Ok(res) if res.status() == 200 => res.text().await.is_ok_and(|t| t == challenge),
        _ => false,
    };
    state
        .lock()
        .expect("state")
        .handshakes
        .push((url.to_string(), passed));
    passed
}
