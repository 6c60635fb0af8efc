//! The hookd process among other processes: logs into a pipe that goes away, output cut short.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::{HookdProcess, Storage, free_port, wait_ready};

#[actix_web::test]
async fn sigterm_stops_hookd_even_when_its_log_pipe_is_closed() {
    let storage = Storage::start();
    let port = free_port();
    let mut child = HookdProcess::command_on(&storage, "pipe:", port, "pipe")
        // Logged at info: the shutdown line is written into the closed pipe.
        .env("HOOKD_LOG__LEVEL", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookd starts");
    // The log shipper goes away.
    drop(child.stderr.take());
    let mut hookd = HookdProcess::from_child(child);
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    hookd.terminate();
    let status = hookd.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn check_config_into_a_pipe_closed_early_exits_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg("check-config")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookd runs");
    // `hookd check-config | head -c 10`: the reader stops after a few bytes.
    let mut first = [0u8; 10];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("some output");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    let status = child.wait().expect("exit");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.code().is_some(), "killed by a signal: {status:?}");
}

/// The metrics the README's table lists, but those labelled by endpoint (a series per
/// endpoint appears with the endpoint's first attempt) and, on Redis, those it says are the
/// embedded backend's.
fn documented_metrics() -> Vec<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README");
    readme
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let kind = *cells.get(2)?;
            let labels = *cells.get(3)?;
            let embedded_only = cells.get(4)?.starts_with("embedded:");
            (name.starts_with("hookd_")
                && matches!(kind, "counter" | "gauge" | "histogram")
                && !labels.contains("endpoint")
                && !(embedded_only && crate::BACKEND == hookd::config::StorageBackend::Redis))
                .then(|| name.to_string())
        })
        .collect()
}

#[actix_web::test]
async fn every_documented_metric_and_the_process_metrics_appear_from_start_up() {
    let storage = Storage::start();
    let (_hookd, base) = HookdProcess::start_on(&storage, "m:", "metrics", &[]).await;
    let documented = documented_metrics();
    assert!(documented.len() >= 20, "{documented:?}");
    // Storage gauges come with the housekeeper's first round, which runs at start-up.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text");
        let missing: Vec<&String> = documented
            .iter()
            .filter(|n| !text.lines().any(|l| l.starts_with(n.as_str())))
            .collect();
        if missing.is_empty() {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not exported at start-up: {missing:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    };
    for process in [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(text.contains(process), "{process}");
    }
    let version = format!(
        "hookd_build_info{{version=\"{}\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&version), "{version}");
}

#[actix_web::test]
async fn sigterm_with_a_stream_open_ends_the_stream_and_exits_well_before_the_shutdown_timeout() {
    let storage = Storage::start();
    let (mut hookd, base) = HookdProcess::start_on(
        &storage,
        "sse:",
        "sse",
        &[("HOOKD_SERVER__SHUTDOWN_TIMEOUT", "30s")],
    )
    .await;
    let mut stream = reqwest::Client::new()
        .get(format!("{base}/api/v1/stream"))
        .bearer_auth(crate::helpers::ADMIN_KEY)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(stream.status(), 200);
    let first = stream.chunk().await.expect("first chunk");
    assert!(first.is_some(), "the stream says it is open");
    let asked = std::time::Instant::now();
    hookd.terminate();
    let status = hookd.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "exit status {status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "an open stream held shutdown for {:?}",
        asked.elapsed()
    );
    // The stream ended rather than being cut: the body finishes cleanly.
    let rest = actix_web::rt::time::timeout(Duration::from_secs(5), stream.chunk()).await;
    assert!(matches!(rest, Ok(Ok(None))), "stream end: {rest:?}");
}
