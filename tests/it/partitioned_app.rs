//! hookd in-process on a Redis of four partitions: a request naming two business accounts
//! (of two partitions) is answered once, its events are listed, fetched by their ids (marked
//! with their partition), followed by the live feed, and delivered.

use std::time::Duration;

use crate::helpers::{ADMIN_KEY, RedisServer, SECRET, TestApp, test_settings};
use crate::ordering::step_body;
use crate::receiver::admin_catch_all;
use crate::stream::{open, read_until};

#[actix_web::test]
async fn events_of_every_partition_are_listed_fetched_followed_and_delivered() {
    let redis = RedisServer::start();
    let mut settings = test_settings(&redis.url());
    settings.redis.partitions = crate::partitions_contract::PARTITIONS;
    let app = TestApp::spawn(settings).await;
    let (receiver, _) = admin_catch_all(&app).await;
    let mut feed = open(&app, ADMIN_KEY, "").await;
    let mut seen = String::new();
    read_until(&mut feed, &mut seen, ": hookd stream").await;

    // Six conversations over two business accounts, which are in two partitions.
    assert_eq!(app.post_signed(&step_body(0), SECRET).await.status(), 200);
    receiver.wait_for(6, Duration::from_secs(20)).await;
    for c in 0..6 {
        read_until(&mut feed, &mut seen, &format!("wamid.{c}.0")).await;
    }

    let listed = app.api_json("/api/v1/events?limit=4").await;
    let mut ids: Vec<String> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["id"].as_str().expect("id").to_string())
        .collect();
    let cursor = listed["next_cursor"].as_str().expect("a second page");
    let rest = app
        .api_json(&format!("/api/v1/events?limit=4&cursor={cursor}"))
        .await;
    ids.extend(
        rest["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["id"].as_str().expect("id").to_string()),
    );
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert!(
        ids.iter().all(|id| id.contains('~')),
        "partitions 1 and 3: {ids:?}"
    );
    for id in &ids {
        let event = app.api_json(&format!("/api/v1/events/{id}")).await;
        assert_eq!(event["id"], id.as_str());
    }
    let stats = app.api_json("/api/v1/stats").await;
    assert_eq!(
        (stats["received"].as_u64(), stats["events"].as_u64()),
        (Some(1), Some(6))
    );
}
