//! Records the commit hookd is built from, for `hookd_build_info` (`unknown` outside a git
//! checkout, or set BUILD_GIT_COMMIT when building elsewhere). Not a HOOKD_ variable: cargo
//! passes it to test runs too, and hookd refuses HOOKD_ variables that name no setting.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BUILD_GIT_COMMIT");
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("BUILD_GIT_COMMIT").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_string())
    });
    println!(
        "cargo:rustc-env=BUILD_GIT_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}
