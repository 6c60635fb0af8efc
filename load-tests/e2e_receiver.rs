//! The far end of the end-to-end load test: a webhook receiver that verifies every delivery's
//! Standard Webhooks signature (with the independent `standardwebhooks` crate), counts them,
//! and measures the latency from hookd's receipt of Meta's POST (`received_at` in the payload,
//! same machine clock) to the delivery's arrival here.
//!
//! cargo run --release --example e2e-receiver -- 127.0.0.1:18082 whsec_...
//!
//! `GET /stats` → `{"verified":…, "bad":…, "first_ms":…, "last_ms":…, "p50_ms":…, "p99_ms":…}`
//! for everything since the last `POST /reset`.

use std::sync::Mutex;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Default)]
struct Tally {
    verified: u64,
    bad: u64,
    first_ms: u64,
    last_ms: u64,
    latencies_ms: Vec<u32>,
}

struct State {
    webhook: standardwebhooks::Webhook,
    tally: Mutex<Tally>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:18082".into());
    let secret = args.next().expect("usage: e2e-receiver ADDR whsec_SECRET");
    let webhook = standardwebhooks::Webhook::new(&secret).expect("a whsec_ secret");
    let state = web::Data::new(State {
        webhook,
        tally: Mutex::new(Tally::default()),
    });
    eprintln!("e2e receiver on {listen}");
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/hook", web::post().to(receive))
            .route("/stats", web::get().to(stats))
            .route("/reset", web::post().to(reset))
    })
    .workers(1)
    .bind(listen)?
    .run()
    .await
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    let arrived = now_ms();
    let mut headers = hyper::HeaderMap::new();
    for (k, v) in req.headers() {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_str().as_bytes()),
            hyper::header::HeaderValue::from_bytes(v.as_bytes()),
        ) {
            headers.insert(k, v);
        }
    }
    let ok = state.webhook.verify(&body, &headers).is_ok();
    let received_at = received_at(&body);
    let mut t = state.tally.lock().unwrap_or_else(|e| e.into_inner());
    match (ok, received_at) {
        (true, Some(rcv)) => {
            t.verified += 1;
            if t.first_ms == 0 {
                t.first_ms = arrived;
            }
            t.last_ms = arrived;
            t.latencies_ms.push(arrived.saturating_sub(rcv) as u32);
            HttpResponse::NoContent().finish()
        }
        _ => {
            t.bad += 1;
            HttpResponse::BadRequest().finish()
        }
    }
}

/// `received_at` from hookd's payload without parsing all of it (the receiver should cost
/// little next to hookd on the same machine).
fn received_at(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"received_at\":";
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = body[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

async fn stats(state: web::Data<State>) -> HttpResponse {
    let t = state.tally.lock().unwrap_or_else(|e| e.into_inner());
    let mut l = t.latencies_ms.clone();
    l.sort_unstable();
    let q = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
    };
    HttpResponse::Ok().json(serde_json::json!({
        "verified": t.verified,
        "bad": t.bad,
        "first_ms": t.first_ms,
        "last_ms": t.last_ms,
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
    }))
}

async fn reset(state: web::Data<State>) -> HttpResponse {
    *state.tally.lock().unwrap_or_else(|e| e.into_inner()) = Tally::default();
    HttpResponse::NoContent().finish()
}
