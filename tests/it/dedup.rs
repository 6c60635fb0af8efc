//! Meta's duplicates: the same body again, the same events re-batched, and many at once.

use std::collections::BTreeSet;

use futures_util::future::join_all;

use crate::helpers::{SECRET, Storage, TestApp, whatsapp_body};

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| format!("wamid.{n}")).collect()
}

#[actix_web::test]
async fn the_same_body_twice_stores_its_events_once() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    let body = whatsapp_body(&ids(&["a", "b"]));
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    assert_eq!(app.post_signed(&body, SECRET).await.status(), 200);
    let stats = app.wait_until_split(2).await;
    assert_eq!(stats["events"], 2);
    assert_eq!(stats["duplicates"], 2);
}

#[actix_web::test]
async fn events_rebatched_into_different_bodies_are_stored_once() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    for batch in [&["a", "b"][..], &["c", "b"], &["c", "a", "d"], &["d"]] {
        let res = app.post_signed(&whatsapp_body(&ids(batch)), SECRET).await;
        assert_eq!(res.status(), 200);
    }
    let stats = app.wait_until_split(4).await;
    assert_eq!(stats["events"], 4, "a, b, c, d");
    assert_eq!(stats["duplicates"], 4);
    let page = app.api_json("/api/v1/events?limit=100").await;
    let stored: BTreeSet<String> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["data"]["messages"][0]["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(stored, ids(&["a", "b", "c", "d"]).into_iter().collect());
}

#[actix_web::test]
async fn five_hundred_concurrent_requests_with_overlapping_events_store_exactly_the_unique_ones() {
    let storage = Storage::start();
    let app = TestApp::spawn(storage.settings()).await;
    // Request i carries messages i%150, (i*7)%150 and (i*13+5)%150: every id appears in
    // several concurrent requests.
    let bodies: Vec<Vec<String>> = (0..500u32)
        .map(|i| {
            [i % 150, (i * 7) % 150, (i * 13 + 5) % 150]
                .iter()
                .map(|n| format!("wamid.c{n}"))
                .collect()
        })
        .collect();
    let unique: BTreeSet<&String> = bodies.iter().flatten().collect();
    let total: usize = bodies.iter().map(Vec::len).sum();

    let responses = join_all(
        bodies
            .iter()
            .map(|ids| async { app.post_signed(&whatsapp_body(ids), SECRET).await.status() }),
    )
    .await;
    assert!(responses.iter().all(|s| *s == 200), "{responses:?}");

    let stats = app.wait_until_split(500).await;
    assert_eq!(stats["events"].as_u64(), Some(unique.len() as u64));
    assert_eq!(
        stats["duplicates"].as_u64(),
        Some((total - unique.len()) as u64)
    );
}
