//! Sends unique, signed WhatsApp webhook bodies and reports throughput and latency.
//!
//! cargo run --release --example loadgen -- URL SECRET CONCURRENCY SECONDS [RATE] [EVENTS] [ACCOUNTS]
//!
//! RATE 0 (default) sends as fast as CONCURRENCY connections allow (closed loop); a RATE
//! above 0 paces requests at that many per second (open loop), for latency at a given load.
//! EVENTS (default 1) is the number of messages per body: Meta batches several updates into
//! one POST when traffic is high. ACCOUNTS (default 1) is the number of WhatsApp business
//! accounts (each with its phone number) the bodies take in turn: a partitioned Redis keeps
//! each account in one partition. Message ids carry the process id, so that several
//! generators at once never send the same.
//! Prints one line: `RESULT rps=… p50_ms=… p99_ms=… ok=… errors=…`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hookd::meta::signature::sign;

fn body(n: u64, events: u64, accounts: u64) -> Vec<u8> {
    let pid = std::process::id();
    let messages: Vec<String> = (0..events)
        .map(|i| {
            let id = n * 1000 + i;
            format!(
                r#"{{"from":"16505551234","id":"wamid.LOAD{pid}.{id:023}","timestamp":"1749416383","type":"text","text":{{"body":"Does it come in another color? {id}"}}}}"#
            )
        })
        .collect();
    let account = n % accounts.max(1);
    let (waba, phone) = (102290129340398 + account, 106540352242922 + account);
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{phone}"}},"contacts":[{{"profile":{{"name":"Load Test"}},"wa_id":"16505551234"}}],"messages":[{}]}},"field":"messages"}}]}}]}}"#,
        messages.join(",")
    )
    .into_bytes()
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url: String = arg(&args, 0, "http://127.0.0.1:8080/webhooks/load".to_string());
    let secret: String = arg(&args, 1, "test_app_secret".to_string());
    let concurrency: usize = arg(&args, 2, 64);
    let seconds: u64 = arg(&args, 3, 10);
    let rate: u64 = arg(&args, 4, 0);
    let events: u64 = arg(&args, 5, 1).clamp(1, 999);
    let accounts: u64 = arg(&args, 6, 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(
        url,
        secret,
        concurrency,
        Duration::from_secs(seconds),
        rate,
        events,
        accounts,
    ));
}

async fn run(
    url: String,
    secret: String,
    concurrency: usize,
    duration: Duration,
    rate: u64,
    events: u64,
    accounts: u64,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    // Unique ids across runs, so a rerun against the same Redis is not all duplicates.
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let next = Arc::new(AtomicU64::new(base));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let per_worker_interval =
        (rate > 0).then(|| Duration::from_secs_f64(concurrency as f64 / rate as f64));

    let mut workers = Vec::new();
    for w in 0..concurrency {
        let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
        let (next, errors) = (next.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ticker = per_worker_interval.map(|iv| {
                let offset = iv.mul_f64(w as f64 / concurrency as f64);
                tokio::time::interval_at(tokio::time::Instant::now() + offset, iv)
            });
            while Instant::now() < deadline {
                if let Some(t) = ticker.as_mut() {
                    t.tick().await;
                    // The tick may come after the deadline: then nothing more is sent.
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                let body = body(next.fetch_add(1, Ordering::Relaxed), events, accounts);
                let sig = sign(secret.as_bytes(), &body);
                let sent = Instant::now();
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => latencies.push(sent.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    println!(
        "RESULT rps={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} ok={} errors={}",
        latencies.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        latencies
            .last()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0),
        latencies.len(),
        errors.load(Ordering::Relaxed)
    );
}
