//! The engine on its own: supervision of a failing actor, and retention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hookd::actors::Engine;
use hookd::store::*;

use crate::helpers::{RedisServer, SECRET, TestApp, test_settings, whatsapp_body};

fn restarts(rendered: &str) -> u64 {
    rendered
        .lines()
        .find(|l| l.starts_with("hookd_actor_restarts_total{actor=\"normalizer\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn a_failing_normalizer_is_restarted_counted_and_goes_on_splitting() {
    let redis = RedisServer::start();
    let settings = test_settings(&redis.url());
    let store: Arc<dyn Backend> =
        Arc::new(RedisStore::new(&settings, crate::helpers::test_secrets()).expect("store"));
    store.prepare().await.expect("prepare");
    let prometheus = hookd::metrics::install();
    let before = restarts(&prometheus.render());
    let engine = Engine::start(&settings, store.clone(), prometheus.clone())
        .await
        .expect("engine starts");

    // The journal becomes something the normalizer cannot read (a reply it does not
    // understand, as a bug would give): it fails, and supervision restarts it.
    redis.break_journal(&settings.redis.prefix);
    let deadline = Instant::now() + Duration::from_secs(10);
    while restarts(&prometheus.render()) == before {
        assert!(
            Instant::now() < deadline,
            "the normalizer was never restarted"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }

    // Mended, the restarted normalizer splits what comes next.
    redis.mend_journal(&settings.redis.prefix);
    let entry = JournalEntry {
        source: "test".into(),
        received_at_ms: 1,
        request_id: "r1".into(),
        signature: String::new(),
        user_agent: String::new(),
        body: whatsapp_body(&["wamid.sup".into()]).into(),
    };
    store.append_journal(&[entry]).await.expect("journaled");
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.stats().await.expect("stats").events < 1 {
        assert!(
            Instant::now() < deadline,
            "the restarted normalizer never split the entry"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(engine.is_running());
    engine.shutdown().await;
}

#[actix_web::test]
async fn streams_are_trimmed_by_age_and_dedup_keys_expire() {
    let redis = RedisServer::start();
    let mut settings = test_settings(&redis.url());
    settings.retention.dedup_ttl = Duration::from_secs(3600);
    let prefix = settings.redis.prefix.clone();
    let mut conn = redis.connection();
    // Entries from 1970, long past the 7-day retention.
    for stream in ["events", "quarantine", "inbound"] {
        let _: String = redis::cmd("XADD")
            .arg(format!("{prefix}{stream}"))
            .arg("1000-0")
            .arg("old")
            .arg("1")
            .query(&mut conn)
            .expect("xadd");
    }
    let app = TestApp::spawn(settings).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // (The old journal entry has no body: the normalizer quarantines it under a new id
        // before the trim may come, so only the old ids themselves are looked for.)
        let remaining: Vec<usize> = ["events", "quarantine", "inbound"]
            .iter()
            .map(|s| {
                let found: Vec<redis::Value> = redis::cmd("XRANGE")
                    .arg(format!("{prefix}{s}"))
                    .arg("1000-0")
                    .arg("1000-0")
                    .query(&mut conn)
                    .expect("xrange");
                found.len()
            })
            .collect();
        if remaining == [0, 0, 0] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old entries not trimmed: {remaining:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    let body = whatsapp_body(&["wamid.ttl".into()]);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    app.wait_until_split(1).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}dedup:*"))
        .query(&mut conn)
        .expect("keys");
    assert_eq!(keys.len(), 1);
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query(&mut conn)
        .expect("ttl");
    assert!((3500..=3600).contains(&ttl), "dedup key TTL {ttl}");
    app.stop().await;
}

/// Niceness of each thread of this process, from /proc.
fn thread_niceness() -> Vec<i64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
        // The fields after the command name: nice is the 19th field of the line, the 17th
        // after the closing parenthesis of the name.
        .filter_map(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            rest.split_whitespace().nth(16)?.parse().ok()
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[actix_web::test]
async fn the_normalizer_thread_runs_at_the_configured_niceness() {
    let redis = RedisServer::start();
    let mut settings = test_settings(&redis.url());
    // A value no other test uses, so the thread found is this engine's.
    settings.normalizer.nice = 7;
    let store: Arc<dyn Backend> =
        Arc::new(RedisStore::new(&settings, crate::helpers::test_secrets()).expect("store"));
    store.prepare().await.expect("prepare");
    let engine = Engine::start(&settings, store, hookd::metrics::install())
        .await
        .expect("engine starts");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !thread_niceness().contains(&7) {
        assert!(
            Instant::now() < deadline,
            "no thread at niceness 7: {:?}",
            thread_niceness()
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    engine.shutdown().await;
}
