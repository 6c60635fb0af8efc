//! Endpoint secrets that a hookd before encryption stored in clear (Redis): read as they are,
//! sealed by `hookd reencrypt`.

use serde_json::json;

use crate::helpers::{ADMIN_KEY, ENCRYPTION_KEY, Storage, TestApp};
use crate::secrets_at_rest::{contains, distinctive_secret, hookd, secret_of};

/// The test writes a record the way hookd did before secrets were sealed.
#[actix_web::test]
async fn secrets_stored_before_encryption_are_read_and_then_sealed_by_reencrypt() {
    let storage = Storage::start();
    let Storage::Redis(redis) = &storage else {
        panic!("this binary runs on Redis");
    };
    let settings = storage.settings();
    let prefix = settings.redis.prefix.clone();
    let (secret, secret_b64) = distinctive_secret("legacy");
    let app = TestApp::spawn(settings.clone()).await;
    let ep = app
        .endpoint(
            ADMIN_KEY,
            json!({"url": "http://127.0.0.1:9/legacy", "event_types": ["*"], "secret": secret}),
        )
        .await;
    let id = ep["id"].as_str().expect("id").to_string();
    app.stop().await;

    let mut conn = redis.connection();
    let key = format!("{prefix}endpoints");
    let stored: String = redis::cmd("HGET")
        .arg(&key)
        .arg(&id)
        .query(&mut conn)
        .expect("stored");
    let mut record: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert_ne!(record["secret"], json!(secret), "hookd sealed it");
    record["secret"] = json!(secret);
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg(&id)
        .arg(record.to_string())
        .query(&mut conn)
        .expect("written as before");

    let app = TestApp::spawn(settings.clone()).await;
    assert_eq!(
        secret_of(&app.base, &id).await,
        secret,
        "read as it was stored"
    );
    app.stop().await;

    let sealed = hookd(&storage, &prefix, "reencrypt", ENCRYPTION_KEY, "[]");
    assert!(
        sealed.status.success(),
        "{}",
        String::from_utf8_lossy(&sealed.stderr)
    );
    assert!(
        !contains(&storage.raw_bytes(&prefix), &secret_b64),
        "sealed now"
    );
    let app = TestApp::spawn(settings).await;
    assert_eq!(secret_of(&app.base, &id).await, secret);
}
