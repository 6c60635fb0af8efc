//! Conversation ordering end to end: a receiver that fails some deliveries checks that each
//! conversation's events arrive in the order hookd received them, one at a time, across
//! retries and a `kill -9` of hookd.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{ADMIN_KEY, HookdProcess, Storage, post_webhook, whatsapp_request};
use crate::receiver::{Received, Receiver, Reply};

/// Conversations, and messages in each.
pub const CONVERSATIONS: usize = 6;
pub const MESSAGES: usize = 20;
/// How long the receiver takes to accept a delivery.
pub const ACCEPT_TIME: Duration = Duration::from_millis(15);

/// Step `step` of every conversation, in one request (as Meta batches messages): message
/// `step` from user `c` is `wamid.c.step`. Even conversations are on one business account's
/// number, odd ones on another's: one envelope entry each, which a partitioned Redis keeps in
/// two partitions.
pub fn step_body(step: usize) -> Vec<u8> {
    let entry = |account: usize| {
        let ids: Vec<(String, String)> = (account..CONVERSATIONS)
            .step_by(2)
            .map(|c| (format!("1555000{c}"), format!("wamid.{c}.{step}")))
            .collect();
        let messages: Vec<(&str, &str)> =
            ids.iter().map(|(f, i)| (f.as_str(), i.as_str())).collect();
        let body = whatsapp_request(
            &format!("WABA{}", account + 1),
            &format!("PN{}", account + 1),
            &messages,
            &[],
        );
        let mut request: serde_json::Value = serde_json::from_slice(&body).expect("json");
        request["entry"][0].take()
    };
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [entry(0), entry(1)],
    }))
    .expect("json")
}

/// Posts steps `steps` to the hookd at `base`, each answered before the next is sent (so the
/// order hookd received them is this one).
pub async fn post_steps(base: &str, steps: std::ops::Range<usize>) {
    let client = reqwest::Client::new();
    for step in steps {
        post_webhook(&client, base, step_body(step)).await;
    }
}

/// An admin endpoint to `url` taking each conversation in order, retried quickly.
pub async fn subscribe_ordered(base: &str, url: &str) {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/v1/endpoints"))
        .bearer_auth(ADMIN_KEY)
        .json(
            &json!({"url": url, "event_types": ["whatsapp.messages"], "ordering": "conversation",
            "retry_schedule": ["0s", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms"]}),
        )
        .send()
        .await
        .expect("api");
    assert_eq!(res.status(), 201, "{:?}", res.text().await);
}

/// Every fourth request fails unless it repeats a delivery that failed (so no event fails
/// for good); the rest are accepted after [`ACCEPT_TIME`].
pub fn failing_now_and_then(receiver: &Receiver) {
    let replies: Vec<Reply> = (0..400)
        .map(|i| match i % 4 {
            3 => Reply::FailFirstTry(500, ACCEPT_TIME),
            _ => Reply::Slow(200, ACCEPT_TIME),
        })
        .collect();
    receiver.script(&replies);
    receiver.answer_by_default(Reply::Slow(200, ACCEPT_TIME));
}

/// (conversation, message) of a delivered request.
fn message_of(r: &Received) -> (usize, usize) {
    let body = r.json();
    let id = body["data"]["messages"][0]["id"]
        .as_str()
        .unwrap_or_default();
    let mut parts = id
        .split('.')
        .skip(1)
        .map(|p| p.parse().unwrap_or(usize::MAX));
    (
        parts.next().unwrap_or(usize::MAX),
        parts.next().unwrap_or(usize::MAX),
    )
}

/// Per conversation, the messages the receiver accepted, in the order they arrived; a
/// delivery repeated under its webhook-id (hookd died before storing that it was made)
/// counts once.
fn accepted(got: &[Received]) -> BTreeMap<usize, Vec<usize>> {
    let mut out: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for r in got.iter().filter(|r| r.answered == Some(200)) {
        let (c, m) = message_of(r);
        let list = out.entry(c).or_default();
        if list.last() != Some(&m) {
            list.push(m);
        }
    }
    out
}

/// Waits until every message of every conversation was accepted, then checks that each
/// conversation arrived whole, in order, one delivery at a time.
pub async fn assert_each_conversation_in_order(receiver: &Receiver, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = receiver.received();
        let done = accepted(&got);
        let finished =
            done.len() == CONVERSATIONS && done.values().all(|m| m.last() == Some(&(MESSAGES - 1)));
        if finished {
            let expected: Vec<usize> = (0..MESSAGES).collect();
            for (c, messages) in &done {
                assert_eq!(
                    messages, &expected,
                    "conversation {c} in the order received: {done:?}"
                );
            }
            assert_one_at_a_time(&got);
            eprintln!(
                "{} requests for {} events; every conversation in order",
                got.len(),
                CONVERSATIONS * MESSAGES
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} events accepted: {done:?}",
            done.values().map(Vec::len).sum::<usize>(),
            CONVERSATIONS * MESSAGES
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A conversation's next request never arrives before the receiver accepted the one before
/// (which takes [`ACCEPT_TIME`]): at most one is in flight.
fn assert_one_at_a_time(got: &[Received]) {
    let mut last: BTreeMap<usize, &Received> = BTreeMap::new();
    for r in got {
        let (c, _) = message_of(r);
        if let Some(prev) = last.get(&c)
            && prev.answered == Some(200)
        {
            assert!(
                r.at >= prev.at + ACCEPT_TIME,
                "conversation {c}: a request {:?} after the one before, which took {ACCEPT_TIME:?}",
                r.at - prev.at
            );
        }
        last.insert(c, r);
    }
}

#[actix_web::test]
async fn each_conversation_arrives_in_order_through_failures_retries_and_a_kill() {
    let storage = Storage::start();
    let receiver = Receiver::start();
    failing_now_and_then(&receiver);
    let (mut hookd, base) = HookdProcess::start_on(&storage, "ord:", "a", &[]).await;
    subscribe_ordered(&base, &receiver.url).await;
    post_steps(&base, 0..MESSAGES / 2).await;
    receiver
        .wait_for(CONVERSATIONS * 3, Duration::from_secs(20))
        .await;
    // kill -9, with deliveries in flight and retries waiting.
    hookd.kill();
    let (_hookd, base) = HookdProcess::start_on(&storage, "ord:", "a", &[]).await;
    post_steps(&base, MESSAGES / 2..MESSAGES).await;
    assert_each_conversation_in_order(&receiver, Duration::from_secs(60)).await;
}
