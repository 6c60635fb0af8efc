//! The Redis backend's backlog gauges when Redis itself cannot count the backlog.

use hookd::store::*;

use crate::helpers::{RedisServer, test_secrets, test_settings};

#[actix_web::test]
async fn a_backlog_redis_cannot_count_is_counted_by_hookd_not_shown_as_zero() {
    let redis = RedisServer::start();
    let settings = test_settings(&redis.url());
    let inbound = format!("{}inbound", settings.redis.prefix);
    let store = RedisStore::new(&settings, test_secrets()).expect("store");
    store.prepare().await.expect("prepare");
    let entry = JournalEntry {
        source: "test".into(),
        received_at_ms: hookd::time::unix_ms(),
        request_id: "lag".into(),
        signature: String::new(),
        user_agent: String::new(),
        body: bytes::Bytes::from_static(b"{}"),
    };
    let ids = store
        .append_journal(&vec![entry; 5])
        .await
        .expect("journaled");

    // A group moved by hand (as after a restore) leaves Redis unable to count what follows.
    let mut conn = redis.connection();
    let _: () = redis::cmd("XGROUP")
        .arg("SETID")
        .arg(&inbound)
        .arg("normalizer")
        .arg(&ids[1])
        .query(&mut conn)
        .expect("setid");
    let groups: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(&inbound)
        .query(&mut conn)
        .expect("groups");
    let is_lag = |k: &redis::Value| matches!(k, redis::Value::BulkString(k) if k == b"lag");
    let lag_unknown = groups.iter().any(|g| match g {
        redis::Value::Array(kv) => kv
            .chunks(2)
            .any(|p| is_lag(&p[0]) && matches!(p.get(1), Some(redis::Value::Nil))),
        redis::Value::Map(m) => m
            .iter()
            .any(|(k, v)| is_lag(k) && matches!(v, redis::Value::Nil)),
        _ => false,
    });
    assert!(
        lag_unknown,
        "precondition: Redis reports the lag as unknown: {groups:?}"
    );

    let gauges = store.stream_gauges().await.expect("gauges");
    assert_eq!(
        gauges.inbound_lag, 3,
        "the three entries after the group's position"
    );
}
