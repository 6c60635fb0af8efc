//! The storage contract of conversation ordering (run by `contract_suite!` on every
//! backend): only a conversation's head is queued, a final outcome lets the next go, a dead
//! head says how many it released, a stale WhatsApp status is marked instead of delivered.

use std::sync::Arc;

use hookd::store::*;

use crate::contract::{NO_WAIT, resolution, store_routed};

const ORDERED: &str = "ep_ordered";

/// A request of `PN1`: messages (`from`, wamid) and statuses (recipient, wamid, status).
fn conversation_body(messages: &[(&str, &str)], statuses: &[(&str, &str, &str)]) -> Vec<u8> {
    crate::helpers::whatsapp_request("WABA1", "PN1", messages, statuses)
}

fn journal(body: Vec<u8>) -> JournalEntry {
    JournalEntry {
        source: "test".into(),
        received_at_ms: hookd::time::unix_ms(),
        request_id: "ordering".into(),
        signature: String::new(),
        user_agent: String::new(),
        body: body.into(),
    }
}

/// Stores one request per body, every event routed to the ordered endpoint; the new ids in
/// the order received.
async fn store_ordered(b: &dyn Backend, bodies: Vec<Vec<u8>>) -> Vec<String> {
    let routing = Routing {
        endpoints: vec![ORDERED.into()],
        ordered: vec![ORDERED.into()],
        ..Routing::default()
    };
    let entries = bodies.into_iter().map(journal).collect();
    store_routed(b, entries, routing)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

async fn read_new(b: &dyn Backend) -> Vec<DeliveryRecord> {
    b.read_deliveries("d", ReadFrom::New, 100, NO_WAIT)
        .await
        .expect("read deliveries")
}

async fn commit(b: &dyn Backend, outcomes: Vec<(&DeliveryRecord, NextStep)>) {
    let mut acks: Vec<String> = outcomes.iter().map(|(r, _)| r.id.clone()).collect();
    acks.dedup();
    let commit = AttemptCommit {
        resolutions: outcomes
            .into_iter()
            .map(|(r, next)| resolution(r, next))
            .collect(),
        acks,
        stats: Vec::new(),
    };
    b.commit_attempts(&commit).await.expect("commit");
}

fn subjects(records: &[DeliveryRecord]) -> Vec<&str> {
    records.iter().map(|r| r.subject.as_str()).collect()
}

pub async fn a_conversation_goes_one_event_at_a_time_in_the_order_received(b: Arc<dyn Backend>) {
    let ids = store_ordered(
        &*b,
        vec![
            conversation_body(&[("1555", "wamid.a1"), ("1555", "wamid.a2")], &[]),
            conversation_body(&[("1666", "wamid.b1"), ("1555", "wamid.a3")], &[]),
        ],
    )
    .await;
    let (a1, a2, b1, a3) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let heads = read_new(&*b).await;
    assert_eq!(
        subjects(&heads),
        [a1.as_str(), b1.as_str()],
        "one per conversation"
    );
    assert!(heads.iter().all(|r| r.endpoints == [ORDERED]));
    // The first of 1555 fails: nothing else of 1555 goes, 1666 is not held back.
    let due = hookd::time::unix_ms();
    commit(
        &*b,
        vec![
            (&heads[0], NextStep::Retry { due_ms: due }),
            (&heads[1], NextStep::Delivered),
        ],
    )
    .await;
    assert!(read_new(&*b).await.is_empty(), "a2 waits for a1");
    assert_eq!(
        b.promote_due_retries(due, 10).await.expect("promote"),
        (1, 0)
    );
    let retried = read_new(&*b).await;
    assert_eq!(subjects(&retried), [a1.as_str()]);
    assert_eq!(retried[0].attempt, 2);
    commit(&*b, vec![(&retried[0], NextStep::Delivered)]).await;
    for next in [a2, a3] {
        let got = read_new(&*b).await;
        assert_eq!(subjects(&got), [next.as_str()], "in the order received");
        assert_eq!(got[0].attempt, 1);
        commit(&*b, vec![(&got[0], NextStep::Delivered)]).await;
    }
    assert!(read_new(&*b).await.is_empty());
}

pub async fn a_dead_head_releases_its_conversation_and_its_dead_letter_says_so(
    b: Arc<dyn Backend>,
) {
    let ids = store_ordered(
        &*b,
        vec![conversation_body(
            &[
                ("1555", "wamid.d1"),
                ("1555", "wamid.d2"),
                ("1555", "wamid.d3"),
            ],
            &[],
        )],
    )
    .await;
    let head = read_new(&*b).await;
    assert_eq!(subjects(&head), [ids[0].as_str()]);
    let dead = NextStep::Dead {
        reason: "5 attempts failed".into(),
    };
    commit(&*b, vec![(&head[0], dead)]).await;
    let next = read_new(&*b).await;
    assert_eq!(subjects(&next), [ids[1].as_str()], "the rest go after it");
    let letters = b
        .list_dead(&DeadQuery {
            limit: 10,
            ..DeadQuery::default()
        })
        .await
        .expect("dead letters");
    assert_eq!(letters.items.len(), 1);
    assert_eq!(
        letters.items[0].reason,
        "5 attempts failed; 2 later events of its conversation released after it"
    );
}

pub async fn a_status_behind_a_later_one_of_its_message_is_marked_stale(b: Arc<dyn Backend>) {
    // Meta sent "read" before "delivered"; "sent" of another message is not affected.
    let ids = store_ordered(
        &*b,
        vec![
            conversation_body(&[], &[("1555", "wamid.s1", "read")]),
            conversation_body(
                &[],
                &[
                    ("1555", "wamid.s1", "delivered"),
                    ("1555", "wamid.s2", "sent"),
                ],
            ),
        ],
    )
    .await;
    assert_eq!(ids.len(), 3);
    let head = read_new(&*b).await;
    assert_eq!(subjects(&head), [ids[0].as_str()]);
    commit(&*b, vec![(&head[0], NextStep::Delivered)]).await;
    let next = read_new(&*b).await;
    assert_eq!(
        subjects(&next),
        [ids[2].as_str()],
        "the stale status is skipped"
    );
    let states = b
        .delivery_states(DeliveryKind::Event, &ids[1], &[ORDERED.into()])
        .await
        .expect("states");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].status, DeliveryStatus::Stale);
    assert_eq!(b.stats().await.expect("stats").stale_statuses, 1);
}

pub async fn a_head_whose_event_is_gone_lets_the_next_go(b: Arc<dyn Backend>) {
    let ids = store_ordered(
        &*b,
        vec![conversation_body(
            &[("1555", "wamid.g1"), ("1555", "wamid.g2")],
            &[],
        )],
    )
    .await;
    let record = hookd::model::audit::AuditRecord {
        id: String::new(),
        at: hookd::time::unix_ms(),
        actor: "admin".into(),
        address: String::new(),
        method: "DELETE".into(),
        route: "/api/v1/events/{id}".into(),
        action: "event.delete".into(),
        object_id: ids[0].clone(),
        tenant_id: String::new(),
        changes: serde_json::Value::Null,
        outcome: hookd::model::audit::Outcome::Applied,
        status: None,
        error: None,
    };
    assert!(b.delete_event(&ids[0], &record).await.expect("delete"));
    // The head's delivery finds its event gone; the next is queued in its place.
    let mut got = read_new(&*b).await;
    if got.is_empty() {
        got = read_new(&*b).await;
    }
    assert_eq!(subjects(&got), [ids[1].as_str()]);
}

/// One consumer holds the journal lease at a time; one that stalled past it cannot store what
/// it read, and the next holder takes that over and stores it.
pub async fn the_journal_lease_has_one_holder_and_a_stalled_one_cannot_commit(b: Arc<dyn Backend>) {
    let lease = std::time::Duration::from_millis(300);
    let (a, c) = (b.for_consumer(), b.for_consumer());
    let (wa, wc) = (
        a.shared_work().expect("shared"),
        c.shared_work().expect("shared"),
    );
    assert_eq!(
        wa.hold_journal_lease("a", lease).await.expect("hold"),
        JournalLease::Taken
    );
    assert_eq!(
        wa.hold_journal_lease("a", lease).await.expect("hold"),
        JournalLease::Kept
    );
    assert_eq!(
        wc.hold_journal_lease("c", lease).await.expect("hold"),
        JournalLease::HeldElsewhere
    );
    a.append_journal(&[journal(conversation_body(&[("1555", "wamid.l1")], &[]))])
        .await
        .expect("append");
    let read = a
        .read_journal("a", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read");
    assert_eq!(read.len(), 1);
    // `a` stalls past its lease; `c` takes it.
    tokio::time::sleep(lease * 2).await;
    assert_eq!(
        wc.hold_journal_lease("c", lease).await.expect("hold"),
        JournalLease::Taken
    );
    let split: Vec<Normalized> = read.into_iter().map(hookd::normalize::normalize).collect();
    assert!(
        a.commit_normalized(&split).await.is_err(),
        "a stalled holder's commit is refused"
    );
    assert_eq!(
        wc.claim_stale_journal("c", std::time::Duration::ZERO, 10)
            .await
            .expect("claim"),
        1
    );
    let taken = c
        .read_journal("c", ReadFrom::Pending, 10, NO_WAIT)
        .await
        .expect("pending");
    let split: Vec<Normalized> = taken.into_iter().map(hookd::normalize::normalize).collect();
    let stored = c
        .commit_normalized(&split)
        .await
        .expect("the holder commits");
    assert!(stored[0].event_ids[0].is_some());
    wc.release_journal_lease("c").await.expect("release");
    assert_eq!(
        wa.hold_journal_lease("a", lease).await.expect("hold"),
        JournalLease::Taken
    );
}
