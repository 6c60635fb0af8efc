//! Conversation ordering with two hookd instances on one Redis: requests reach either, and the
//! one splitting the journal dies with `kill -9`; every conversation still arrives in the
//! order the requests were answered, one delivery at a time.

use std::time::Duration;

use crate::helpers::{HookdProcess, RedisServer, free_port, wait_ready};
use crate::ordering::{
    CONVERSATIONS, MESSAGES, assert_each_conversation_in_order, failing_now_and_then, post_steps,
    subscribe_ordered,
};
use crate::receiver::Receiver;

#[actix_web::test]
async fn two_instances_keep_each_conversation_in_order_when_the_journal_splitter_is_killed() {
    let redis = RedisServer::start();
    let prefix = "ord2:";
    let receiver = Receiver::start();
    failing_now_and_then(&receiver);
    let ports = [free_port(), free_port()];
    let bases = ports.map(|p| format!("http://127.0.0.1:{p}"));
    let mut instances = [
        HookdProcess::spawn(&redis.url(), prefix, ports[0], "a"),
        HookdProcess::spawn(&redis.url(), prefix, ports[1], "b"),
    ];
    for base in &bases {
        wait_ready(base).await;
    }
    subscribe_ordered(&bases[0], &receiver.url).await;
    // The other instance learns of the endpoint from the endpoint version.
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    // Steps alternate between the instances, each answered before the next is sent.
    for step in 0..MESSAGES / 2 {
        post_steps(&bases[step % 2], step..step + 1).await;
    }
    receiver
        .wait_for(CONVERSATIONS * 3, Duration::from_secs(20))
        .await;
    let holder: String = redis::cmd("GET")
        .arg(format!("{prefix}journal:lease"))
        .query(&mut redis.connection())
        .expect("the journal lease");
    let (dead, alive) = if holder == "a" { (0, 1) } else { (1, 0) };
    instances[dead].kill();
    post_steps(&bases[alive], MESSAGES / 2..MESSAGES).await;
    assert_each_conversation_in_order(&receiver, Duration::from_secs(60)).await;
    eprintln!("killed the journal's splitter ({holder})");
}
