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
