//! Tenant fairness end to end: while one tenant's endpoint has a backlog of 100,000 events to
//! work through (and takes its time: a few milliseconds each, four at a time), another
//! tenant's trickle of events is delivered within [`TRICKLE_P99`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;

use crate::helpers::{HookdProcess, Storage, TestApp, post_webhook, whatsapp_request};

const BACKLOG: usize = 100_000;
const PER_REQUEST: usize = 500;
const TRICKLE: usize = 40;
const TRICKLE_EVERY: Duration = Duration::from_millis(100);
/// The bound the quiet tenant's 99th percentile, from its request answered to its event
/// delivered, stays within.
const TRICKLE_P99: Duration = Duration::from_secs(2);
/// How long the busy tenant's endpoint takes per event.
const BUSY_TAKES: Duration = Duration::from_millis(2);

/// Counts the busy tenant's deliveries and notes when each of the quiet tenant's arrives.
#[derive(Default)]
struct Tally {
    busy: AtomicU64,
    quiet: Mutex<HashMap<String, Instant>>,
}

async fn tally(body: web::Bytes, t: web::Data<Arc<Tally>>) -> HttpResponse {
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let id = v["data"]["messages"][0]["id"].as_str().unwrap_or_default();
    if id.starts_with("wamid.quiet.") {
        let mut quiet = t.quiet.lock().expect("tally");
        quiet.entry(id.to_string()).or_insert_with(Instant::now);
    } else {
        t.busy.fetch_add(1, Ordering::Relaxed);
        actix_web::rt::time::sleep(BUSY_TAKES).await;
    }
    HttpResponse::Ok().finish()
}

fn start_receiver(t: Arc<Tally>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let data = web::Data::new(t);
            let _ = HttpServer::new(move || {
                App::new()
                    .app_data(data.clone())
                    .default_service(web::to(tally))
            })
            .workers(2)
            .disable_signals()
            .listen(listener)
            .expect("listen")
            .run()
            .await;
        });
    });
    format!("http://127.0.0.1:{port}/hook")
}

/// A request of `waba`'s phone number with one message per wamid.
fn body(waba: &str, wamids: &[String]) -> Vec<u8> {
    let messages: Vec<(&str, &str)> = wamids
        .iter()
        .map(|id| ("15550001111", id.as_str()))
        .collect();
    whatsapp_request(waba, &format!("PN.{waba}"), &messages, &[])
}

async fn post(app: &TestApp, body: Vec<u8>) {
    post_webhook(&app.client, &app.base, body).await;
}

#[actix_web::test]
async fn a_trickle_is_delivered_promptly_beside_another_tenants_backlog_of_100k() {
    let storage = Storage::start();
    // Splitting at the same priority as delivering, and fsyncs batched: the backlog is queued
    // quickly, so the test measures delivery.
    let env = [
        ("HOOKD_NORMALIZER__NICE", "0"),
        ("HOOKD_STORAGE__SYNC", "interval"),
    ];
    let (_hookd, base) = HookdProcess::start_on(&storage, "fair:", "a", &env).await;
    let app = TestApp::attach(base, "fair:", "");
    let tally = Arc::new(Tally::default());
    let url = start_receiver(tally.clone());
    for (name, waba, in_flight) in [("busy", "WABA_BUSY", 4), ("quiet", "WABA_QUIET", 16)] {
        let (_, key) = app.tenant_owning(name, &[waba]).await;
        app.endpoint(
            &key,
            json!({"url": url, "event_types": ["*"], "max_in_flight": in_flight}),
        )
        .await;
    }
    // The busy tenant's backlog, split and queued before the trickle starts.
    for r in 0..BACKLOG / PER_REQUEST {
        let wamids: Vec<String> = (0..PER_REQUEST)
            .map(|i| format!("wamid.busy.{r}.{i}"))
            .collect();
        post(&app, body("WABA_BUSY", &wamids)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while app.stats().await["events"].as_u64() < Some(BACKLOG as u64) {
        assert!(Instant::now() < deadline, "backlog not split in time");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let busy_at_start = tally.busy.load(Ordering::Relaxed);
    let mut sent = HashMap::new();
    for n in 0..TRICKLE {
        let id = format!("wamid.quiet.{n}");
        post(&app, body("WABA_QUIET", std::slice::from_ref(&id))).await;
        sent.insert(id, Instant::now());
        actix_web::rt::time::sleep(TRICKLE_EVERY).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally.quiet.lock().expect("tally").len() < TRICKLE {
        assert!(Instant::now() < deadline, "the trickle was not delivered");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let busy_at_end = tally.busy.load(Ordering::Relaxed);
    let mut latencies: Vec<Duration> = {
        let quiet = tally.quiet.lock().expect("tally");
        sent.iter()
            .map(|(id, at)| quiet[id].saturating_duration_since(*at))
            .collect()
    };
    latencies.sort();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "trickle p50 {:?}, p99 {p99:?}; busy delivered {busy_at_start} before it, {busy_at_end} after, of {BACKLOG}",
        latencies[latencies.len() / 2]
    );
    assert!(
        busy_at_end < BACKLOG as u64,
        "the backlog was still there while the trickle was measured"
    );
    assert!(
        p99 <= TRICKLE_P99,
        "trickle p99 {p99:?} above {TRICKLE_P99:?}"
    );
}
