//! A local webhook receiver for delivery tests: records what arrives and answers as scripted.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

use crate::helpers::TestApp;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// The status with `Retry-After: seconds`.
    RetryAfter(u16, u64),
    /// Answer after a delay.
    Slow(u16, Duration),
    /// Never answer.
    Hang,
    /// The status for a delivery's first try (a webhook-id not seen before); its repeat is
    /// accepted with 200 after the delay.
    FailFirstTry(u16, Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// Unix ms at arrival.
    pub at_ms: u64,
    pub at: Instant,
    /// What the receiver answered (None while hanging).
    pub answered: Option<u16>,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("delivered body is JSON")
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let reply = {
        let mut s = state.lock().expect("receiver state");
        let reply = s
            .script
            .pop_front()
            .or(s.default)
            .unwrap_or(Reply::Status(200));
        let reply = match reply {
            Reply::FailFirstTry(status, delay) => {
                let id = req
                    .headers()
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok());
                let seen = s
                    .received
                    .iter()
                    .any(|r| Some(r.header("webhook-id")) == id);
                if seen {
                    Reply::Slow(200, delay)
                } else {
                    Reply::Status(status)
                }
            }
            other => other,
        };
        let answered = match reply {
            Reply::Status(c) | Reply::RetryAfter(c, _) | Reply::Slow(c, _) => Some(c),
            Reply::Hang | Reply::FailFirstTry(..) => None,
        };
        s.received.push(Received {
            headers: req
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body.to_vec(),
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            at: Instant::now(),
            answered,
        });
        reply
    };
    let status = |c: u16| actix_web::http::StatusCode::from_u16(c).expect("status");
    match reply {
        Reply::Status(c) => HttpResponse::build(status(c)).body("ok"),
        Reply::RetryAfter(c, secs) => HttpResponse::build(status(c))
            .insert_header(("Retry-After", secs.to_string()))
            .finish(),
        Reply::Slow(c, d) => {
            actix_web::rt::time::sleep(d).await;
            HttpResponse::build(status(c)).finish()
        }
        Reply::Hang | Reply::FailFirstTry(..) => {
            actix_web::rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
    }
}

impl Receiver {
    /// Starts on a free port in a thread of its own, answering 200 unless scripted.
    pub fn start() -> Receiver {
        let state = Arc::new(Mutex::new(State::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let port = listener.local_addr().expect("addr").port();
        let shared = state.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let data = web::Data::new(shared);
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(64 << 20))
                        .default_service(web::to(handle))
                })
                .workers(2)
                .disable_signals()
                .listen(listener)
                .expect("listen")
                .run();
                let _ = server.await;
            });
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
        }
    }

    /// The next answers, in order; afterwards the default.
    pub fn script(&self, replies: &[Reply]) {
        self.state
            .lock()
            .expect("receiver state")
            .script
            .extend(replies.iter().copied());
    }

    /// The answer when nothing is scripted.
    pub fn answer_by_default(&self, reply: Reply) {
        self.state.lock().expect("receiver state").default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().expect("receiver state").received.len()
    }

    /// Waits until at least `n` requests arrived; returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "receiver got {} of {n} requests in {within:?}",
                got.len()
            );
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A receiver and the admin's own endpoint to it, subscribed to everything (it receives every
/// account's events, owned or not).
pub async fn admin_catch_all(app: &TestApp) -> (Receiver, serde_json::Value) {
    let receiver = Receiver::start();
    let ep = app
        .endpoint(
            crate::helpers::ADMIN_KEY,
            serde_json::json!({"url": receiver.url, "event_types": ["*"]}),
        )
        .await;
    (receiver, ep)
}

/// A receiver, a key of a tenant owning `WABA1` (the account of `whatsapp_body`), and an
/// endpoint of that tenant subscribed to everything.
pub async fn catch_all(app: &TestApp) -> (Receiver, String, serde_json::Value) {
    let receiver = Receiver::start();
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    let ep = app
        .endpoint(
            &key,
            serde_json::json!({"url": receiver.url, "event_types": ["*"]}),
        )
        .await;
    (receiver, key, ep)
}
