//! What the Redis backend over several partitions promises beyond the storage contract (which
//! it passes too, see `contract.rs`): a request is stored once per account, in its account's
//! partition; listings merge the partitions without loss or repeat; deliveries of every
//! partition are read and resolved; instances share the partitions' journals and take over a
//! stopped one's share. Run on one redis-server and on a Redis Cluster.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use hookd::store::partitions::of_entry;
use hookd::store::*;

use hookd::normalize::normalize;

use crate::contract::{NO_WAIT, Subject, cluster_subject, partitioned_subject};

pub const PARTITIONS: usize = 4;

/// `n` account ids, at least one in each partition.
fn accounts(n: usize) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for i in 0.. {
        let id = format!("10{i:04}");
        let p = of_entry(&id, PARTITIONS);
        if ids.len() < n || !seen.contains(&p) {
            seen.insert(p);
            ids.push(id);
        }
        if ids.len() >= n && seen.len() == PARTITIONS {
            break;
        }
    }
    ids
}

/// A Messenger request with one message on each of `pages`; message ids carry `tag`.
fn page_request(pages: &[String], tag: &str) -> JournalEntry {
    let entries: Vec<String> = pages
        .iter()
        .map(|page| {
            format!(
                r#"{{"id":"{page}","time":1700000000000,"messaging":[{{"sender":{{"id":"psid1"}},"recipient":{{"id":"{page}"}},"timestamp":1700000000000,"message":{{"mid":"m.{page}.{tag}","text":"hi"}}}}]}}"#
            )
        })
        .collect();
    JournalEntry {
        source: "test".into(),
        received_at_ms: hookd::time::unix_ms(),
        request_id: format!("req-{tag}"),
        signature: String::new(),
        user_agent: String::new(),
        body: format!(r#"{{"object":"page","entry":[{}]}}"#, entries.join(",")).into(),
    }
}

/// Journals `entries`, then splits and stores every copy of them (one per partition they
/// speak of) with each event routed to `endpoint`, as the normalizers would: the ids stored.
async fn store_routed(
    b: &dyn Backend,
    entries: Vec<JournalEntry>,
    endpoint: &str,
) -> Vec<Option<String>> {
    b.append_journal(&entries).await.expect("append");
    let mut ids = Vec::new();
    loop {
        let records = b
            .read_journal("c", ReadFrom::New, 100, NO_WAIT)
            .await
            .expect("read");
        if records.is_empty() {
            return ids;
        }
        let batch: Vec<Normalized> = records
            .into_iter()
            .map(|r| {
                let mut n = normalize(r);
                if let Normalized::Events {
                    events, routing, ..
                } = &mut n
                {
                    *routing = events
                        .iter()
                        .map(|_| Routing {
                            endpoints: vec![endpoint.into()],
                            ..Routing::default()
                        })
                        .collect();
                }
                n
            })
            .collect();
        for outcome in b.commit_normalized(&batch).await.expect("commit") {
            ids.extend(outcome.event_ids);
        }
    }
}

async fn all_events(b: &dyn Backend, limit: usize) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = b
            .list_events(&EventQuery {
                cursor: cursor.clone(),
                limit,
                ..EventQuery::default()
            })
            .await
            .expect("list");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

async fn request_of_several_partitions_is_stored_once_per_account(b: Arc<dyn Backend>) {
    let pages = accounts(6);
    let ids = store_routed(&*b, vec![page_request(&pages, "a")], "ep_1").await;
    let stored: Vec<String> = ids.into_iter().flatten().collect();
    assert_eq!(
        stored.len(),
        pages.len(),
        "one event per account: {stored:?}"
    );
    assert!(
        stored.iter().any(|id| id.contains('~')),
        "some in partitions past 0"
    );
    for id in &stored {
        let e = b.get_event(id).await.expect("get").expect("found");
        assert_eq!(&e.id, id);
        let partition = of_entry(&e.account_id, PARTITIONS);
        assert_eq!(id.contains('~'), partition > 0, "{id} of {}", e.account_id);
    }
    let stats = b.stats().await.expect("stats");
    assert_eq!((stats.received, stats.events), (1, pages.len() as u64));
    // The same request again (Meta retries): every event is a duplicate, in every partition.
    let again = store_routed(&*b, vec![page_request(&pages, "a")], "ep_1").await;
    assert!(again.iter().all(Option::is_none) && !again.is_empty());
}

async fn listings_merge_the_partitions_newest_first_without_loss_or_repeat(b: Arc<dyn Backend>) {
    let pages = accounts(5);
    let mut stored = BTreeSet::new();
    for round in 0..8 {
        let entries = pages
            .iter()
            .map(|p| page_request(std::slice::from_ref(p), &format!("r{round}")))
            .collect();
        for id in store_routed(&*b, entries, "ep_1").await {
            stored.insert(id.expect("new"));
        }
    }
    let listed = all_events(&*b, 7).await;
    let listed_ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    let unique: BTreeSet<String> = listed_ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(unique.len(), listed_ids.len(), "no event listed twice");
    assert_eq!(unique, stored, "every event listed");
    let received: Vec<u64> = listed.iter().map(|e| e.received_at).collect();
    assert!(
        received.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {received:?}"
    );
}

async fn deliveries_of_every_partition_are_read_and_resolved_in_it(b: Arc<dyn Backend>) {
    let pages = accounts(6);
    let ids = store_routed(&*b, vec![page_request(&pages, "d")], "ep_1").await;
    let events: BTreeSet<String> = ids.into_iter().flatten().collect();
    let mut read = Vec::new();
    loop {
        let got = b
            .read_deliveries("d", ReadFrom::New, 100, NO_WAIT)
            .await
            .expect("read");
        if got.is_empty() {
            break;
        }
        read.extend(got);
    }
    let subjects: BTreeSet<String> = read.iter().map(|r| r.subject.clone()).collect();
    assert_eq!(subjects, events, "each event's delivery read once");
    let commit = AttemptCommit {
        resolutions: read
            .iter()
            .map(|r| crate::contract::resolution(r, NextStep::Delivered))
            .collect(),
        acks: read
            .iter()
            .map(|r| r.id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        stats: Vec::new(),
    };
    b.commit_attempts(&commit).await.expect("commit");
    let pending = b
        .read_deliveries("d", ReadFrom::Pending, 100, NO_WAIT)
        .await
        .expect("pending");
    assert!(pending.is_empty(), "all acknowledged: {pending:?}");
    for id in &events {
        let states = b
            .delivery_states(DeliveryKind::Event, id, &["ep_1".to_string()])
            .await
            .expect("states");
        assert_eq!(states[0].status, DeliveryStatus::Delivered, "{id}");
    }
}

async fn pending_reads_go_through_every_partitions_held_deliveries(b: Arc<dyn Backend>) {
    let pages = accounts(6);
    let events: BTreeSet<String> = store_routed(&*b, vec![page_request(&pages, "p")], "ep_1")
        .await
        .into_iter()
        .flatten()
        .collect();
    // Every delivery read and none acknowledged, as by a consumer that died.
    while !b
        .read_deliveries("d", ReadFrom::New, 100, NO_WAIT)
        .await
        .expect("read")
        .is_empty()
    {}
    // Back, it reads what it held: each partition's share comes in turn.
    let mut seen = BTreeSet::new();
    for _ in 0..2 * PARTITIONS {
        let held = b
            .read_deliveries("d", ReadFrom::Pending, 100, NO_WAIT)
            .await
            .expect("pending");
        seen.extend(held.into_iter().map(|r| r.subject));
    }
    assert_eq!(seen, events, "every partition's held deliveries");
}

async fn instances_share_the_journals_and_take_over_a_stopped_ones_share(b: Arc<dyn Backend>) {
    let lease = Duration::from_millis(600);
    let (a, c) = (b.journal_partitions(), b.journal_partitions());
    let hold = |parts: &Vec<Arc<dyn Backend>>, who: &'static str| {
        let parts = parts.clone();
        async move {
            let mut held = Vec::new();
            for (p, part) in parts.iter().enumerate() {
                let work = part.shared_work().expect("shared");
                if work.hold_journal_lease(who, lease).await.expect("lease")
                    != JournalLease::HeldElsewhere
                {
                    held.push(p);
                }
            }
            held
        }
    };
    let every: Vec<usize> = (0..PARTITIONS).collect();
    assert_eq!(
        hold(&a, "a").await,
        every,
        "alone, one instance holds every journal"
    );
    assert!(hold(&c, "c").await.is_empty(), "held: the other waits");
    // "a" sees "c" alive once it asks Redis again (a quarter of the lease after it last did)
    // and lets go of what is "c"'s share; "c" takes it.
    tokio::time::sleep(lease / 4).await;
    let kept = hold(&a, "a").await;
    let taken = hold(&c, "c").await;
    assert!(!kept.is_empty() && !taken.is_empty(), "{kept:?} {taken:?}");
    let all: BTreeSet<usize> = kept.iter().chain(&taken).copied().collect();
    assert_eq!(
        (all.len(), kept.len() + taken.len()),
        (PARTITIONS, PARTITIONS),
        "every journal has one holder: {kept:?} {taken:?}"
    );
    // The split holds: asked again, each keeps its share and gets none of the other's.
    tokio::time::sleep(lease / 4).await;
    assert_eq!((hold(&a, "a").await, hold(&c, "c").await), (kept, taken));
    // "a" stops without a word: once its note and leases run out, "c" holds everything.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    assert_eq!(hold(&c, "c").await, every);
}

macro_rules! partitioned_guarantees {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;

            async fn subject() -> Subject {
                $make(|_| {}).await
            }

            #[actix_web::test]
            async fn a_request_of_several_partitions_is_stored_once_per_account() {
                let s = subject().await;
                request_of_several_partitions_is_stored_once_per_account(s.backend.clone()).await;
            }

            #[actix_web::test]
            async fn listings_merge_the_partitions_newest_first_without_loss_or_repeat() {
                let s = subject().await;
                super::listings_merge_the_partitions_newest_first_without_loss_or_repeat(
                    s.backend.clone(),
                )
                .await;
            }

            #[actix_web::test]
            async fn deliveries_of_every_partition_are_read_and_resolved_in_it() {
                let s = subject().await;
                super::deliveries_of_every_partition_are_read_and_resolved_in_it(s.backend.clone())
                    .await;
            }

            #[actix_web::test]
            async fn pending_reads_go_through_every_partitions_held_deliveries() {
                let s = subject().await;
                super::pending_reads_go_through_every_partitions_held_deliveries(s.backend.clone())
                    .await;
            }

            #[actix_web::test]
            async fn instances_share_the_journals_and_take_over_a_stopped_ones_share() {
                let s = subject().await;
                super::instances_share_the_journals_and_take_over_a_stopped_ones_share(
                    s.backend.clone(),
                )
                .await;
            }
        }
    };
}

partitioned_guarantees!(one_redis, partitioned_subject);
partitioned_guarantees!(cluster, cluster_subject);

/// A round of outcomes over two partitions that one of them refuses is committed again whole
/// by the dispatcher; the partition that took it the first time does not take it twice.
#[actix_web::test]
async fn a_round_one_partition_refused_is_not_applied_twice_where_it_was_taken() {
    let redis = crate::helpers::RedisServer::start();
    let mut settings = crate::helpers::test_settings(&redis.url());
    settings.redis.partitions = PARTITIONS;
    let b = open_redis(&settings, crate::helpers::test_secrets()).expect("store");
    b.prepare().await.expect("prepare");
    // One account in partition 0, one in another.
    let pages = accounts(PARTITIONS * 4);
    let first = pages
        .iter()
        .find(|p| of_entry(p, PARTITIONS) == 0)
        .expect("partition 0");
    let other = pages
        .iter()
        .find(|p| of_entry(p, PARTITIONS) != 0)
        .expect("another");
    let refusing = of_entry(other, PARTITIONS);
    store_routed(
        &*b,
        vec![page_request(&[first.clone(), other.clone()], "x")],
        "ep_1",
    )
    .await;
    let read = b
        .read_deliveries("d", ReadFrom::New, 100, NO_WAIT)
        .await
        .expect("read");
    let mut read = read;
    read.extend(
        b.read_deliveries("d", ReadFrom::New, 100, NO_WAIT)
            .await
            .expect("read"),
    );
    assert_eq!(read.len(), 2, "{read:?}");
    let dead = |r: &DeliveryRecord| {
        crate::contract::resolution(
            r,
            NextStep::Dead {
                reason: "gave up".into(),
            },
        )
    };
    let round = AttemptCommit {
        resolutions: read.iter().map(dead).collect(),
        acks: read.iter().map(|r| r.id.clone()).collect(),
        stats: Vec::new(),
    };
    // The other partition's dead letters cannot be written (a key of the wrong type).
    let dead_key = Keys::for_partition(&settings.redis.prefix, true, refusing).dead();
    let set = |value: Option<&str>| {
        let mut c = redis.connection();
        match value {
            Some(v) => redis::cmd("SET").arg(&dead_key).arg(v).query::<()>(&mut c),
            None => redis::cmd("DEL").arg(&dead_key).query::<()>(&mut c),
        }
        .expect("redis")
    };
    set(Some("not a stream"));
    assert!(
        b.commit_attempts(&round).await.is_err(),
        "one partition refuses"
    );
    set(None);
    b.commit_attempts(&round).await.expect("the round again");
    let listed = b
        .list_dead(&DeadQuery {
            limit: 10,
            ..DeadQuery::default()
        })
        .await
        .expect("dead");
    assert_eq!(
        listed.items.len(),
        2,
        "one dead letter each: {:?}",
        listed.items
    );
}
