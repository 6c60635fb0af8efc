//! hookd on a Redis Cluster of its own, as processes: two instances sharing the partitions
//! keep every conversation in order when one is killed; with `redis.wait_replicas`, every
//! request answered 200 is delivered even when its partition's master is killed and its
//! replica takes over.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookd::store::Keys;
use hookd::store::partitions::of_entry;

use crate::cluster::RedisCluster;
use crate::helpers::{HookdProcess, SECRET, sign, whatsapp_request};
use crate::ordering::{
    CONVERSATIONS, MESSAGES, assert_each_conversation_in_order, failing_now_and_then, post_steps,
    subscribe_ordered,
};
use crate::receiver::Receiver;

const PARTITIONS: usize = 4;
/// Requests of the failover test, sent by this many senders at once.
const REQUESTS: usize = 240;
const SENDERS: usize = 8;

fn cluster_env(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut env = vec![
        ("HOOKD_REDIS__CLUSTER", "true"),
        ("HOOKD_REDIS__PARTITIONS", "4"),
    ];
    env.extend_from_slice(extra);
    env
}

/// The instance holding partition `p`'s journal lease.
fn lease_holder(cluster: &RedisCluster, prefix: &str, p: usize) -> Option<String> {
    let mut conn = cluster
        .client()
        .get_connection()
        .expect("cluster connection");
    redis::cmd("GET")
        .arg(Keys::for_partition(prefix, true, p).journal_lease())
        .query(&mut conn)
        .expect("GET lease")
}

#[actix_web::test]
async fn two_instances_on_a_cluster_share_the_journals_and_keep_conversations_in_order_when_one_is_killed()
 {
    let cluster = RedisCluster::start(3, 0);
    let prefix = "cl:";
    let receiver = Receiver::start();
    failing_now_and_then(&receiver);
    let env = cluster_env(&[]);
    let (a, base_a) = HookdProcess::start_with(&cluster.url(), prefix, "a", &env).await;
    let (b, base_b) = HookdProcess::start_with(&cluster.url(), prefix, "b", &env).await;
    let mut instances = [a, b];
    let bases = [base_a, base_b];
    subscribe_ordered(&bases[0], &receiver.url).await;
    // The other instance learns of the endpoint from the endpoint version.
    actix_web::rt::time::sleep(Duration::from_millis(600)).await;
    for step in 0..MESSAGES / 2 {
        post_steps(&bases[step % 2], step..step + 1).await;
    }
    receiver
        .wait_for(CONVERSATIONS * 3, Duration::from_secs(30))
        .await;
    let holders: BTreeSet<String> = (0..PARTITIONS)
        .filter_map(|p| lease_holder(&cluster, prefix, p))
        .collect();
    assert_eq!(
        holders,
        BTreeSet::from(["a".to_string(), "b".to_string()]),
        "each instance splits its share of the journals"
    );
    // Kill the one splitting the journal of the first business account's partition.
    let first = of_entry("WABA1", PARTITIONS);
    let holder = lease_holder(&cluster, prefix, first).expect("a holder");
    let (dead, alive) = if holder == "a" { (0, 1) } else { (1, 0) };
    instances[dead].kill();
    post_steps(&bases[alive], MESSAGES / 2..MESSAGES).await;
    assert_each_conversation_in_order(&receiver, Duration::from_secs(60)).await;
}

/// Posts `body` until hookd answers 200, as Meta does; false if it never did in `within`.
async fn post_until_accepted(
    client: &reqwest::Client,
    base: &str,
    body: Vec<u8>,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    let signature = sign(SECRET.as_bytes(), &body);
    while Instant::now() < deadline {
        let answer = client
            .post(format!("{base}/webhooks/test"))
            .header("X-Hub-Signature-256", &signature)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[actix_web::test]
async fn every_request_answered_is_delivered_when_its_master_fails_over_with_wait_replicas() {
    let cluster = Arc::new(Mutex::new(RedisCluster::start(3, 1)));
    let url = lock(&cluster).url();
    let prefix = "fo:";
    let receiver = Receiver::start();
    let env = cluster_env(&[("HOOKD_REDIS__WAIT_REPLICAS", "1")]);
    let (_hookd, base) = HookdProcess::start_with(&url, prefix, "a", &env).await;
    subscribe_ordered(&base, &receiver.url).await;
    // The master holding the first business account's partition.
    let tag = Keys::for_partition(prefix, true, of_entry("WABA1", PARTITIONS)).inbound();
    let doomed = lock(&cluster).master_of(&tag);
    let sent = Arc::new(AtomicUsize::new(0));

    // Eight senders at once, each sending its requests one after the other, each until
    // answered 200 (as Meta retries); the business accounts in turn, each message a
    // conversation of its own.
    let client = reqwest::Client::new();
    let stream = |first: usize| {
        let (sent, client, base) = (sent.clone(), client.clone(), base.clone());
        async move {
            let mut answered = BTreeSet::new();
            for i in (first..REQUESTS).step_by(SENDERS) {
                let account = 1 + i % 2;
                let (wamid, from) = (format!("wamid.fo.{i}"), format!("1555{i:04}"));
                let body = whatsapp_request(
                    &format!("WABA{account}"),
                    &format!("PN{account}"),
                    &[(from.as_str(), wamid.as_str())],
                    &[],
                );
                if post_until_accepted(&client, &base, body, Duration::from_secs(30)).await {
                    answered.insert(wamid);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            answered
        }
    };
    let sender = async {
        let streams = futures_util::future::join_all((0..SENDERS).map(stream)).await;
        streams.into_iter().flatten().collect::<BTreeSet<String>>()
    };
    // A third of the way: kill that master; once its replica took over, bring the old master
    // back (as the new one's replica, so that writes there can be replicated again).
    let chaos = {
        let (cluster, tag, sent) = (cluster.clone(), tag.clone(), sent.clone());
        async move {
            while sent.load(Ordering::Relaxed) < REQUESTS / 3 {
                actix_web::rt::time::sleep(Duration::from_millis(20)).await;
            }
            actix_web::rt::task::spawn_blocking(move || {
                lock(&cluster).kill_node(doomed);
                let deadline = Instant::now() + Duration::from_secs(30);
                while lock(&cluster).master_of(&tag) == doomed {
                    assert!(Instant::now() < deadline, "no replica took over");
                    std::thread::sleep(Duration::from_millis(100));
                }
                lock(&cluster).restart_node(doomed);
            })
            .await
            .expect("failover");
        }
    };
    let (answered, ()) = tokio::join!(sender, chaos);
    assert_eq!(
        answered.len(),
        REQUESTS,
        "every request answered 200 in the end"
    );
    assert_ne!(
        lock(&cluster).master_of(&tag),
        doomed,
        "the replica took over"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let missing = loop {
        let delivered: BTreeSet<String> = receiver
            .received()
            .iter()
            .filter(|r| r.answered == Some(200))
            .filter_map(|r| {
                r.json()["data"]["messages"][0]["id"]
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        let missing: Vec<String> = answered.difference(&delivered).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            break missing;
        }
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        missing.is_empty(),
        "answered but never delivered: {missing:?}"
    );
}

fn lock(cluster: &Mutex<RedisCluster>) -> std::sync::MutexGuard<'_, RedisCluster> {
    cluster
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
