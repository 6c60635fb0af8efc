//! What only the embedded backend promises: one hookd per data directory, clear refusals of
//! a directory it cannot use, 503 on a full disk, and nothing answered 200 lost to `kill -9`.

use std::collections::{BTreeSet, HashMap};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_KEY, ENCRYPTION_KEY, HookdProcess, SECRET, Storage, TestApp, free_port, wait_ready,
    whatsapp_body,
};
use crate::load::load;
use crate::receiver::{Receiver, Reply};

/// Runs `hookd serve` on `dir` until it exits (it should: start-up fails); returns its
/// stderr.
fn refused_start(dir: &std::path::Path) -> String {
    let port = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("serve")
        .env("HOOKD_STORAGE__BACKEND", "embedded")
        .env("HOOKD_STORAGE__PATH", dir)
        .env("HOOKD_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("HOOKD_API__ADMIN_KEY", ADMIN_KEY)
        .env("HOOKD_SECURITY__ENCRYPTION_KEY", ENCRYPTION_KEY)
        .stdout(Stdio::null())
        .output()
        .expect("hookd runs");
    assert!(!out.status.success(), "hookd started on {dir:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[actix_web::test]
async fn a_second_hookd_on_the_same_data_directory_is_refused_naming_the_lock() {
    let storage = Storage::start();
    let Storage::Embedded(dir) = &storage else {
        unreachable!("embedded tests")
    };
    let (_first, _base) = HookdProcess::start_on(&storage, "", "first", &[]).await;
    let err = refused_start(dir.path());
    let lock = dir.path().join("lock");
    assert!(err.contains(&lock.display().to_string()), "{err}");
    assert!(err.contains("another hookd"), "{err}");
}

#[actix_web::test]
async fn a_damaged_data_file_stops_start_up_saying_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hookd.redb"), b"not a data file at all").expect("write");
    let err = refused_start(dir.path());
    assert!(err.contains("damaged or not a hookd data file"), "{err}");
    assert!(err.contains("Move it aside"), "{err}");
}

#[actix_web::test]
async fn a_data_path_that_is_not_a_directory_stops_start_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let err = refused_start(&file);
    assert!(err.contains("cannot use"), "{err}");
    assert!(err.contains("may read and write it"), "{err}");
}

/// A small filesystem of its own (tmpfs), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: the data file may still be open until the test's hookd is gone.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[actix_web::test]
async fn a_full_disk_answers_503_never_200_and_accepts_again_once_space_is_freed() {
    // Mounting needs root (as in CI); elsewhere this test says why it could not run.
    let disk = match SmallDisk::mount("8m") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: cannot mount a small filesystem: {e}");
            return;
        }
    };
    let data = disk.dir.path().join("data");
    let mut settings = Storage::start().settings();
    settings.storage.path = data.clone();
    let app = TestApp::spawn(settings).await;
    assert_eq!(
        app.post_signed(&whatsapp_body(&["wamid.disk0".into()]), SECRET)
            .await
            .status(),
        200
    );
    // Fill the disk; what little is left runs out within a few requests.
    let filler = disk.dir.path().join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let big = whatsapp_body(&["wamid.disk-big".into()]);
    let mut statuses = BTreeSet::new();
    for i in 0..200 {
        let mut body = whatsapp_body(&[format!("wamid.disk{i}")]);
        body.extend(std::iter::repeat_n(b' ', 64 * 1024));
        let status = app.post_signed(&body, SECRET).await.status().as_u16();
        statuses.insert(status);
        if status == 503 {
            break;
        }
    }
    assert!(statuses.contains(&503), "never refused: {statuses:?}");
    assert!(
        statuses.is_subset(&BTreeSet::from([200, 503])),
        "{statuses:?}"
    );
    let res = app.post_signed(&big, SECRET).await;
    assert_eq!(res.status(), 503, "still full");

    std::fs::remove_file(&filler).expect("free the space");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.post_signed(&big, SECRET).await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never accepted again: {status}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    // What was answered 200 before the disk filled is still there.
    let events = app.api_json("/api/v1/events?limit=500").await;
    let stored = events["items"].as_array().map_or(0, Vec::len);
    assert!(stored >= 1, "{events}");
    app.stop().await;
    drop(app);
}

/// Every stored event's wamid, with how often it is stored, read through the API.
async fn stored_wamids(base: &str) -> HashMap<String, usize> {
    let client = reqwest::Client::new();
    let mut stored = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/events?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("events")
            .json()
            .await
            .expect("json");
        for e in page["items"].as_array().into_iter().flatten() {
            let wamid = e["data"]["messages"][0]["id"].as_str().unwrap_or("");
            *stored.entry(wamid.to_string()).or_default() += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return stored,
        }
    }
}

/// Waits until every journaled request is split: events and duplicates add up to the
/// requests received (each body carries one message).
async fn wait_split(base: &str) -> Value {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats: Value = client
            .get(format!("{base}/api/v1/stats"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        let n = |k: &str| stats[k].as_u64().unwrap_or(0);
        if n("events") + n("duplicates") == n("received") {
            return stats;
        }
        assert!(Instant::now() < deadline, "not split: {stats}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn kill_9_under_load_loses_nothing_that_was_answered_200() {
    let storage = Storage::start();
    let (mut hookd, base) = HookdProcess::start_on(&storage, "", "first", &[]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let loader = actix_web::rt::spawn(load(base.clone(), "kill", 16, stop.clone()));
    actix_web::rt::time::sleep(Duration::from_millis(1500)).await;
    hookd.kill();
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let answers = loader.await.expect("load ran");
    let answered: BTreeSet<String> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.wamid.clone())
        .collect();
    assert!(answered.len() > 50, "too little load: {}", answered.len());

    let (_restarted, base) = HookdProcess::start_on(&storage, "", "second", &[]).await;
    wait_split(&base).await;
    let stored = stored_wamids(&base).await;
    let missing: Vec<&String> = answered
        .iter()
        .filter(|w| !stored.contains_key(*w))
        .collect();
    assert!(missing.is_empty(), "answered 200, lost: {missing:?}");
    let repeated: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "stored twice: {repeated:?}");
}

#[actix_web::test]
async fn a_scheduled_retry_and_a_dead_letter_survive_a_kill_and_keep_their_webhook_id() {
    let storage = Storage::start();
    let env = [("HOOKD_DELIVERY__RETRY_JITTER", "0")];
    let (mut hookd, base) = HookdProcess::start_on(&storage, "", "first", &env).await;
    let app = TestApp::attach(base, "", "redis://unused.invalid");
    let receiver = Receiver::start();
    receiver.answer_by_default(Reply::Status(503));
    let (_, key) = app.tenant_owning("acme", &["WABA1"]).await;
    // Two attempts, 2 s apart: the first fails before the kill, the second is due after it.
    app.endpoint(
        &key,
        json!({"url": receiver.url, "event_types": ["*"], "retry_schedule": ["0s", "2s"]}),
    )
    .await;
    let res = app
        .post_signed(&whatsapp_body(&["wamid.survive".into()]), SECRET)
        .await;
    assert_eq!(res.status(), 200);
    receiver.wait_for(1, Duration::from_secs(10)).await;
    hookd.kill();

    let (_restarted, base) = HookdProcess::start_on(&storage, "", "second", &env).await;
    wait_ready(&base).await;
    receiver.wait_for(2, Duration::from_secs(15)).await;
    let seen = receiver.received();
    let id = |i: usize| seen[i].headers.get("webhook-id").cloned();
    assert_eq!(id(0), id(1), "the retry keeps its webhook-id");
    assert!(id(0).is_some());

    // Out of attempts: a dead letter, listed by the restarted hookd.
    let app = TestApp::attach(base, "", "redis://unused.invalid");
    let dead = app
        .get_until("/api/v1/dead", ADMIN_KEY, |v| {
            v["items"].as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(dead["items"][0]["attempts"], 2, "{dead}");
}
