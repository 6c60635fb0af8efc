//! The engine on its own: supervision of a failing actor, and retention.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookd::actors::Engine;
use hookd::store::*;

use crate::helpers::{RedisServer, SECRET, TestApp, test_settings, whatsapp_body};

/// The real Redis store, except that the next journal read fails with an error the
/// normalizer cannot handle, as a bug or an unexpected reply would.
struct FailOnce {
    inner: RedisStore,
    armed: AtomicBool,
    settings: hookd::config::Settings,
    /// Set once the failure was injected, by whichever handle the normalizer holds.
    fired: Arc<AtomicBool>,
}

#[async_trait]
impl Store for FailOnce {
    // The handle given to the normalizer carries the armed failure with it.
    fn dedicated(&self) -> Arc<dyn Store> {
        Arc::new(FailOnce {
            inner: RedisStore::new(&self.settings).expect("store"),
            armed: AtomicBool::new(self.armed.swap(false, Ordering::SeqCst)),
            settings: self.settings.clone(),
            fired: self.fired.clone(),
        })
    }
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn production_warnings(&self) -> Result<Vec<String>, StoreError> {
        self.inner.production_warnings().await
    }
    async fn prepare(&self) -> Result<(), StoreError> {
        self.inner.prepare().await
    }
    async fn append_journal(&self, batch: &[JournalEntry]) -> Result<Vec<String>, StoreError> {
        self.inner.append_journal(batch).await
    }
    async fn read_journal(
        &self,
        consumer: &str,
        from: ReadFrom,
        count: usize,
        block: Duration,
    ) -> Result<Vec<JournalRecord>, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.fired.store(true, Ordering::SeqCst);
            return Err(StoreError::Protocol("injected failure".into()));
        }
        self.inner.read_journal(consumer, from, count, block).await
    }
    async fn claim_stale_journal(
        &self,
        consumer: &str,
        min_idle: Duration,
        count: usize,
    ) -> Result<usize, StoreError> {
        self.inner
            .claim_stale_journal(consumer, min_idle, count)
            .await
    }
    async fn commit_normalized(
        &self,
        batch: &[Normalized],
    ) -> Result<Vec<CommitOutcome>, StoreError> {
        self.inner.commit_normalized(batch).await
    }
    async fn record_rejection(&self, rejection: &Rejection) -> Result<(), StoreError> {
        self.inner.record_rejection(rejection).await
    }
    async fn list_events(&self, query: &EventQuery) -> Result<Page<StoredEvent>, StoreError> {
        self.inner.list_events(query).await
    }
    async fn get_event(&self, id: &str) -> Result<Option<StoredEvent>, StoreError> {
        self.inner.get_event(id).await
    }
    async fn list_quarantine(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<QuarantinedBody>, StoreError> {
        self.inner.list_quarantine(cursor, limit).await
    }
    async fn list_rejected(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<RejectedRequest>, StoreError> {
        self.inner.list_rejected(cursor, limit).await
    }
    async fn stats(&self) -> Result<Stats, StoreError> {
        self.inner.stats().await
    }
    async fn trim(&self) -> Result<(), StoreError> {
        self.inner.trim().await
    }
    async fn stream_gauges(&self) -> Result<StreamGauges, StoreError> {
        self.inner.stream_gauges().await
    }
}

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
    let fired = Arc::new(AtomicBool::new(false));
    let store = Arc::new(FailOnce {
        inner: RedisStore::new(&settings).expect("store"),
        armed: AtomicBool::new(true),
        settings: settings.clone(),
        fired: fired.clone(),
    });
    store.prepare().await.expect("prepare");
    let prometheus = hookd::metrics::install();
    let before = restarts(&prometheus.render());

    let entry = JournalEntry {
        source: "test".into(),
        received_at_ms: 1,
        request_id: "r1".into(),
        signature: String::new(),
        user_agent: String::new(),
        body: whatsapp_body(&["wamid.sup".into()]).into(),
    };
    store.append_journal(&[entry]).await.expect("journaled");
    let delivery: Arc<dyn DeliveryStore> = Arc::new(RedisStore::new(&settings).expect("store"));
    let engine = Engine::start(&settings, store.clone(), delivery, prometheus.clone())
        .await
        .expect("engine starts");

    let deadline = Instant::now() + Duration::from_secs(10);
    while store.stats().await.expect("stats").events < 1 {
        assert!(
            Instant::now() < deadline,
            "the restarted normalizer never split the entry"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(fired.load(Ordering::SeqCst), "the failure was injected");
    assert!(
        restarts(&prometheus.render()) > before,
        "restart not counted"
    );
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
    let redis_store = Arc::new(RedisStore::new(&settings).expect("store"));
    let store: Arc<dyn Store> = redis_store.clone();
    store.prepare().await.expect("prepare");
    let engine = Engine::start(&settings, store, redis_store, hookd::metrics::install())
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
