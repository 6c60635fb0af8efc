//! Endpoint secrets are stored sealed: a copy of storage alone reveals none, a wrong key stops
//! hookd before it signs anything, and a key rotation with `hookd reencrypt` keeps every
//! secret.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{ADMIN_KEY, HookdProcess, Storage, TestApp, free_port};

pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A secret in Standard Webhooks form whose key part is easy to look for.
pub fn distinctive_secret(tag: &str) -> (String, String) {
    use base64::Engine as _;
    let key = format!("hookd-test-secret-{tag}-{}", rand::random::<u32>());
    let b64 = base64::engine::general_purpose::STANDARD.encode(key.as_bytes());
    (format!("whsec_{b64}"), b64)
}

pub async fn secret_of(base: &str, id: &str) -> String {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/endpoints/{id}/secret"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    body["secret"].as_str().expect("secret").to_string()
}

#[actix_web::test]
async fn no_endpoint_secret_current_or_rotated_out_is_stored_in_clear() {
    let storage = Storage::start();
    let settings = storage.settings();
    let prefix = settings.redis.prefix.clone();
    let app = TestApp::spawn(settings).await;
    let (first, first_b64) = distinctive_secret("first");
    let (second, second_b64) = distinctive_secret("second");
    let url = "http://127.0.0.1:9/distinctive-endpoint-url";
    let ep = app
        .endpoint(
            ADMIN_KEY,
            json!({"url": url, "event_types": ["*"], "secret": first}),
        )
        .await;
    let id = ep["id"].as_str().expect("id");
    let (status, _) = app
        .call(
            Method::POST,
            &format!("/api/v1/endpoints/{id}/secret/rotate"),
            ADMIN_KEY,
            Some(json!({"secret": second})),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(secret_of(&app.base, id).await, second, "read back whole");
    app.stop().await;

    let raw = storage.raw_bytes(&prefix);
    assert!(contains(&raw, url), "the check reads the stored endpoint");
    assert!(
        !contains(&raw, &first_b64),
        "the rotated-out secret is in clear"
    );
    assert!(
        !contains(&raw, &second_b64),
        "the current secret is in clear"
    );
}

/// `hookd serve` until it is ready, with `key` (and `previous` keys).
async fn serve(
    storage: &Storage,
    prefix: &str,
    key: &str,
    previous: &str,
) -> (HookdProcess, String) {
    HookdProcess::start_on(
        storage,
        prefix,
        "secrets",
        &[
            ("HOOKD_SECURITY__ENCRYPTION_KEY", key),
            ("HOOKD_SECURITY__PREVIOUS_KEYS", previous),
        ],
    )
    .await
}

pub fn hookd(
    storage: &Storage,
    prefix: &str,
    command: &str,
    key: &str,
    previous: &str,
) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hookd"))
        .arg(command)
        .envs(storage.process_env(prefix))
        .env("HOOKD_SERVER__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("HOOKD_API__ADMIN_KEY", ADMIN_KEY)
        .env("HOOKD_SECURITY__ENCRYPTION_KEY", key)
        .env("HOOKD_SECURITY__PREVIOUS_KEYS", previous)
        .env("HOOKD_LOG__LEVEL", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("hookd runs")
}

#[actix_web::test]
async fn a_wrong_key_stops_start_up_and_a_rotation_with_reencrypt_keeps_every_secret() {
    const OLD: &str = "b2xkIGtleSBvbGQga2V5IG9sZCBrZXkgb2xkIGtleSE=";
    const NEW: &str = "bmV3IGtleSBuZXcga2V5IG5ldyBrZXkgbmV3IGtleSE=";
    let storage = Storage::start();
    let prefix = format!("sec{}:", rand::random::<u32>());
    let (secret, _) = distinctive_secret("rotation");

    let (mut old, base) = serve(&storage, &prefix, OLD, "[]").await;
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/endpoints"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": secret}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 201);
    let id = res.json::<serde_json::Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let pages = format!("{base}/api/v1/sources/test/graph/pages");
    let res = reqwest::Client::new()
        .put(format!("{pages}/4242/token"))
        .bearer_auth(ADMIN_KEY)
        .json(&json!({"access_token": "EAAP-rotation-page-token"}))
        .send()
        .await
        .expect("request sent");
    assert_eq!(res.status(), 200);
    old.terminate();
    assert!(old.wait_exit(Duration::from_secs(15)).success());

    let refused = hookd(&storage, &prefix, "serve", NEW, "[]");
    assert!(
        !refused.status.success(),
        "hookd started with the wrong key"
    );
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("security.previous_keys"), "{said}");

    let (mut both, base) = serve(&storage, &prefix, NEW, &format!("[\"{OLD}\"]")).await;
    assert_eq!(
        secret_of(&base, &id).await,
        secret,
        "the previous key still opens it"
    );
    both.terminate();
    assert!(both.wait_exit(Duration::from_secs(15)).success());

    let sealed = hookd(&storage, &prefix, "reencrypt", NEW, &format!("[\"{OLD}\"]"));
    let said = String::from_utf8_lossy(&sealed.stdout);
    assert!(
        sealed.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&sealed.stderr)
    );
    assert!(said.contains("1 endpoint(s) and 1 Page token"), "{said}");

    let (_new, base) = serve(&storage, &prefix, NEW, "[]").await;
    assert_eq!(
        secret_of(&base, &id).await,
        secret,
        "sealed under the new key alone"
    );
    // Listing the Pages opens their tokens: it fails on a token the new key cannot open.
    let listed = reqwest::Client::new()
        .get(format!("{base}/api/v1/sources/test/graph/pages"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("request sent");
    assert_eq!(
        listed.status(),
        200,
        "the Page token is sealed under the new key"
    );
    let audit: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{base}/api/v1/audit?action=endpoint.secret_reencrypt"
        ))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("json");
    assert_eq!(audit["items"][0]["object_id"], id.as_str(), "{audit}");
    assert_eq!(audit["items"][0]["actor"], "command:reencrypt", "{audit}");
}
