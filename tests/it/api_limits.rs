//! The management API's limits as a caller meets them: a key over its rate is told when to come
//! back, and an address guessing keys is slowed down and then refused, while the right key
//! from the same address still works.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::helpers::{ADMIN_KEY, Storage, TestApp};

async fn app(tune: impl FnOnce(&mut hookd::config::Settings)) -> (Storage, TestApp) {
    let storage = Storage::start();
    let mut settings = storage.settings();
    tune(&mut settings);
    let app = TestApp::spawn(settings).await;
    (storage, app)
}

async fn get(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/v1/endpoints", app.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("request sent")
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in whole seconds")
}

#[actix_web::test]
async fn a_key_past_its_burst_gets_429_with_retry_after_and_other_keys_go_on() {
    let (_storage, app) = app(|s| {
        s.api.requests_per_second = 1;
        s.api.request_burst = 3;
    })
    .await;
    // Making the tenant and its key took some of the admin key's burst of 3.
    let (_tenant, tenant_key) = app.tenant("limits").await;
    let mut admitted = 0;
    let refused = loop {
        let res = get(&app, ADMIN_KEY).await;
        if res.status() == 429 {
            break res;
        }
        assert_eq!(res.status(), 200);
        admitted += 1;
        assert!(admitted <= 3, "more than the burst was admitted");
    };
    assert!((1..=2).contains(&retry_after(&refused)));
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        get(&app, &tenant_key).await.status(),
        200,
        "another key has a budget of its own"
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get(&app, ADMIN_KEY).await.status(), 200, "the rate refills");
    let metrics = app.metrics().await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("hookd_api_rate_limited_total{reason=\"caller\"}")
                && !l.ends_with(" 0")
        ),
        "{metrics}"
    );
}

#[actix_web::test]
async fn wrong_keys_are_slowed_then_refused_per_address_while_the_right_key_still_works() {
    let delay = Duration::from_millis(300);
    let (_storage, app) = app(|s| {
        s.api.auth_failures_per_minute = 3;
        s.api.auth_failure_delay = delay;
    })
    .await;
    for i in 0..3 {
        let started = Instant::now();
        let res = get(&app, &format!("hk_guess_{i}")).await;
        assert_eq!(res.status(), 401);
        assert!(
            started.elapsed() >= delay,
            "a failure is answered after the delay"
        );
    }
    let refused = get(&app, "hk_guess_3").await;
    assert_eq!(refused.status(), 429);
    assert!(retry_after(&refused) >= 1);
    let (status, _) = app
        .call(Method::GET, "/api/v1/endpoints", ADMIN_KEY, None)
        .await;
    assert_eq!(
        status, 200,
        "the right key from the same address is not locked out"
    );
    let metrics = app.metrics().await;
    let counted = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(counted("hookd_api_auth_failures_total") >= 4.0, "{metrics}");
    assert!(
        counted("hookd_api_rate_limited_total{reason=\"auth_failures\"}") >= 1.0,
        "{metrics}"
    );
}
