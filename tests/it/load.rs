//! Load for failure tests: unique signed one-message bodies, several at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hookd::meta::signature::sign;

use crate::helpers::{SECRET, whatsapp_body};

/// One answered request: which wamid it carried, its status, its journal id, how long it took.
pub struct Answer {
    pub wamid: String,
    pub status: u16,
    pub journal_id: Option<String>,
    pub took: Duration,
}

/// Posts unique one-message bodies, `concurrency` at a time, until `stop` is set.
pub async fn load(
    base: String,
    tag: &'static str,
    concurrency: usize,
    stop: Arc<AtomicBool>,
) -> Vec<Answer> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut answers = Vec::new();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let batch: Vec<String> = (0..concurrency as u64)
            .map(|i| format!("wamid.{tag}{}", n + i))
            .collect();
        n += concurrency as u64;
        let results = futures_util::stream::iter(batch.into_iter().map(|wamid| {
            let client = client.clone();
            let url = format!("{base}/webhooks/test");
            async move {
                let body = whatsapp_body(std::slice::from_ref(&wamid));
                let started = Instant::now();
                let res = client
                    .post(url)
                    .header("x-hub-signature-256", sign(SECRET.as_bytes(), &body))
                    .body(body)
                    .send()
                    .await;
                let took = started.elapsed();
                match res {
                    Ok(r) => Answer {
                        status: r.status().as_u16(),
                        journal_id: r
                            .headers()
                            .get("x-journal-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                        wamid,
                        took,
                    },
                    Err(_) => Answer {
                        wamid,
                        status: 0,
                        journal_id: None,
                        took,
                    },
                }
            }
        }))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
        answers.extend(results);
    }
    answers
}
