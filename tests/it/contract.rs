//! The storage contract: what every backend guarantees, one function per guarantee, each
//! taking nothing but a fresh [`Backend`]. `contract_suite!` runs the whole list against one
//! backend; a new backend adds one line at the bottom of this file.

use std::sync::Arc;
use std::time::Duration;

use hookd::config::Settings;
use hookd::model::audit::{AuditRecord, Outcome};
use hookd::model::{Endpoint, Tenant};
use hookd::normalize::normalize;
use hookd::store::*;

use crate::helpers::{RedisServer, test_settings, whatsapp_body};
pub use crate::lanes_contract::*;
pub use crate::ordering_contract::*;

/// A backend under test and whatever keeps it alive (a server, a directory).
pub struct Subject {
    pub backend: Arc<dyn Backend>,
    _keep: Box<dyn std::any::Any>,
}

/// A fresh embedded backend in a directory of its own.
pub async fn embedded_subject(tune: fn(&mut Settings)) -> Subject {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings("redis://unused");
    settings.storage.backend = hookd::config::StorageBackend::Embedded;
    settings.storage.path = dir.path().to_path_buf();
    tune(&mut settings);
    let backend: Arc<dyn Backend> =
        Arc::new(EmbeddedStore::open(&settings, crate::helpers::test_secrets()).expect("store"));
    backend.prepare().await.expect("prepare");
    Subject {
        backend,
        _keep: Box::new(dir),
    }
}

/// A fresh Redis backend (as `redis.*` says once `tune` has had its say) on `server`, a
/// redis-server or a cluster of its own, kept alive with it.
async fn redis_subject_on(
    server: impl std::any::Any,
    url: String,
    layout: fn(&mut Settings),
    tune: fn(&mut Settings),
) -> Subject {
    let mut settings = test_settings(&url);
    layout(&mut settings);
    tune(&mut settings);
    let backend = open_redis(&settings, crate::helpers::test_secrets()).expect("store");
    backend.prepare().await.expect("prepare");
    Subject {
        backend,
        _keep: Box::new(server),
    }
}

/// A fresh Redis backend on a redis-server of its own.
pub async fn redis_subject(tune: fn(&mut Settings)) -> Subject {
    let redis = RedisServer::start();
    let url = redis.url();
    redis_subject_on(redis, url, |_| {}, tune).await
}

/// A fresh Redis backend of four partitions on a redis-server of its own (the tests' WhatsApp
/// account falls in partition 1, so the contract is kept with marked ids).
pub async fn partitioned_subject(tune: fn(&mut Settings)) -> Subject {
    let redis = RedisServer::start();
    let url = redis.url();
    let layout = |s: &mut Settings| s.redis.partitions = crate::partitions_contract::PARTITIONS;
    redis_subject_on(redis, url, layout, tune).await
}

/// A fresh Redis backend of four partitions on a Redis Cluster of its own (three masters).
pub async fn cluster_subject(tune: fn(&mut Settings)) -> Subject {
    let cluster = crate::cluster::RedisCluster::start(3, 0);
    let url = cluster.url();
    let layout = |s: &mut Settings| {
        s.redis.cluster = true;
        s.redis.partitions = crate::partitions_contract::PARTITIONS;
    };
    redis_subject_on(cluster, url, layout, tune).await
}

fn entry(wamids: &[&str]) -> JournalEntry {
    let ids: Vec<String> = wamids.iter().map(|s| s.to_string()).collect();
    JournalEntry {
        source: "test".into(),
        received_at_ms: hookd::time::unix_ms(),
        request_id: "contract".into(),
        signature: String::new(),
        user_agent: String::new(),
        body: whatsapp_body(&ids).into(),
    }
}

pub(crate) const NO_WAIT: Duration = Duration::ZERO;

/// The record of a change by `actor` to `object` of `tenant`.
pub(crate) fn audit(action: &str, object: &str, tenant: &str) -> AuditRecord {
    AuditRecord {
        id: String::new(),
        at: hookd::time::unix_ms(),
        actor: "admin".into(),
        address: "192.0.2.1".into(),
        method: "POST".into(),
        route: "/api/v1/test".into(),
        action: action.into(),
        object_id: object.into(),
        tenant_id: tenant.into(),
        changes: serde_json::json!({ "name": { "to": object } }),
        outcome: Outcome::Applied,
        status: None,
        error: None,
    }
}

/// Tenant `t_1` with one endpoint subscribed to everything, each stored with its record
/// (`tenant.create`, `endpoint.create`).
async fn tenant_with_endpoint(b: &dyn Backend) -> Endpoint {
    let tenant = Tenant {
        id: "t_1".into(),
        name: "one".into(),
        created_at: 1,
    };
    b.put_tenant(&tenant, &audit("tenant.create", "t_1", "t_1"))
        .await
        .expect("tenant");
    let mut endpoint = Endpoint::new("t_1", 1);
    endpoint.url = "https://example.com/hook".into();
    endpoint.event_types = vec!["*".into()];
    let created = audit("endpoint.create", &endpoint.id, "t_1");
    b.put_endpoint(&endpoint, DisabledByHookd::Keep, &created)
        .await
        .expect("endpoint");
    endpoint
}

/// Every audit record matching `q`, following cursors.
async fn all_audit(b: &dyn Backend, mut q: AuditQuery) -> Vec<AuditRecord> {
    let mut out = Vec::new();
    loop {
        let page = b.list_audit(&q).await.expect("list audit");
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

/// The whole audit log, newest first, read a page at a time.
async fn every_audit_record(b: &dyn Backend) -> Vec<AuditRecord> {
    all_audit(
        b,
        AuditQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await
}

fn actions(records: &[AuditRecord]) -> Vec<&str> {
    records.iter().map(|r| r.action.as_str()).collect()
}

/// Journals `entries`, reads them as consumer `c`, splits and commits them (routed to
/// `endpoints`); returns each entry's event ids (`None`: a duplicate).
async fn store_events(
    b: &dyn Backend,
    entries: Vec<JournalEntry>,
    endpoints: &[&str],
) -> Vec<Vec<Option<String>>> {
    store_routed(b, entries, routing(endpoints)).await
}

/// Every event of the entries goes to `endpoints`.
fn routing(endpoints: &[&str]) -> Routing {
    Routing {
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
        ..Routing::default()
    }
}

/// [`store_events`] with every event routed as `routing` says.
pub(crate) async fn store_routed(
    b: &dyn Backend,
    entries: Vec<JournalEntry>,
    mut routing: Routing,
) -> Vec<Vec<Option<String>>> {
    // Owners as the routing table names them.
    for live in b.list_endpoints().await.expect("endpoints") {
        let e = live.endpoint;
        let routed = routing.endpoints.contains(&e.id) || routing.raw_endpoints.contains(&e.id);
        if routed && !e.tenant_id.is_empty() {
            routing.owners.push((e.id, e.tenant_id));
        }
    }
    let n = entries.len();
    b.append_journal(&entries).await.expect("append");
    let records = b
        .read_journal("c", ReadFrom::New, n, NO_WAIT)
        .await
        .expect("read");
    assert_eq!(records.len(), n);
    let batch: Vec<Normalized> = records.into_iter().map(route_with(&routing)).collect();
    b.commit_normalized(&batch)
        .await
        .expect("commit")
        .into_iter()
        .map(|o| o.event_ids)
        .collect()
}

fn route_with(each: &Routing) -> impl Fn(JournalRecord) -> Normalized + '_ {
    move |record| {
        let mut n = normalize(record);
        if let Normalized::Events {
            events, routing, ..
        } = &mut n
        {
            *routing = events.iter().map(|_| each.clone()).collect();
        }
        n
    }
}

pub async fn a_journaled_batch_is_read_back_whole_and_in_order(b: Arc<dyn Backend>) {
    let entries = vec![entry(&["wamid.j1"]), entry(&["wamid.j2"])];
    let ids = b.append_journal(&entries).await.expect("append");
    assert_eq!(ids.len(), 2);
    let read = b
        .read_journal("c", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read");
    let got: Vec<_> = read.iter().map(|r| r.id.clone()).collect();
    assert_eq!(got, ids);
    assert_eq!(
        read[1].entry.as_ref().map(|e| &e.body),
        Some(&entries[1].body)
    );
    let again = b.journal_entry(&ids[0]).await.expect("entry");
    assert_eq!(again.map(|e| e.body), Some(entries[0].body.clone()));
}

pub async fn dedup_is_atomic_with_the_event(b: Arc<dyn Backend>) {
    // Meta's retry of a body, re-batched with something new.
    let ids = store_events(
        &*b,
        vec![entry(&["wamid.d1"]), entry(&["wamid.d1", "wamid.d2"])],
        &[],
    )
    .await;
    assert!(ids[0][0].is_some());
    assert_eq!(ids[1][0], None, "the repeat is a duplicate");
    assert!(ids[1][1].is_some());
    let stats = b.stats().await.expect("stats");
    assert_eq!((stats.events, stats.duplicates), (2, 1));
    let listed = b
        .list_events(&EventQuery {
            limit: 10,
            ..EventQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 2);
}

pub async fn an_entry_read_but_not_committed_is_read_again_and_stored_once(b: Arc<dyn Backend>) {
    b.append_journal(&[entry(&["wamid.c1"])])
        .await
        .expect("append");
    // Read, then "crash" before the commit.
    let first = b
        .read_journal("c", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read");
    let again = b
        .read_journal("c", ReadFrom::Pending, 10, NO_WAIT)
        .await
        .expect("pending");
    assert_eq!(
        again.iter().map(|r| &r.id).collect::<Vec<_>>(),
        first.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    let unrouted = routing(&[]);
    let batch: Vec<Normalized> = again.into_iter().map(route_with(&unrouted)).collect();
    b.commit_normalized(&batch).await.expect("commit");
    // A second commit of the same work (a commit whose answer was lost) stores nothing twice.
    let repeat = b.commit_normalized(&batch).await.expect("commit again");
    assert_eq!(repeat[0].event_ids, vec![None]);
    assert_eq!(b.stats().await.expect("stats").events, 1);
    let pending = b
        .read_journal("c", ReadFrom::Pending, 10, NO_WAIT)
        .await
        .expect("pending");
    assert!(pending.is_empty(), "acknowledged with its commit");
}

pub async fn pending_reads_page_through_everything_held_then_start_over(b: Arc<dyn Backend>) {
    let entries: Vec<JournalEntry> = (0..25).map(|i| entry(&[&format!("wamid.pp{i}")])).collect();
    b.append_journal(&entries).await.expect("append");
    let held: Vec<String> = b
        .read_journal("c", ReadFrom::New, 25, NO_WAIT)
        .await
        .expect("read")
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(held.len(), 25);
    let mut pages = Vec::new();
    for _ in 0..3 {
        let page = b
            .read_journal("c", ReadFrom::Pending, 10, NO_WAIT)
            .await
            .expect("pending");
        pages.push(page.into_iter().map(|r| r.id).collect::<Vec<_>>());
    }
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [10, 10, 5],
        "pages go on after one another"
    );
    assert_eq!(pages.concat(), held, "each held entry once, oldest first");
    let again = b
        .read_journal("c", ReadFrom::Pending, 10, NO_WAIT)
        .await
        .expect("pending");
    assert_eq!(again[0].id, held[0], "after a short page, a new pass");
}

pub async fn a_stale_entry_moves_to_the_live_consumer(b: Arc<dyn Backend>) {
    b.append_journal(&[entry(&["wamid.s1"])])
        .await
        .expect("append");
    let held = b
        .read_journal("dead", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read");
    assert_eq!(held.len(), 1);
    let taken = b
        .shared_work()
        .expect("a backend shared by instances")
        .claim_stale_journal("live", Duration::ZERO, 10)
        .await
        .expect("claim");
    assert_eq!(taken, 1);
    let now_held = b
        .read_journal("live", ReadFrom::Pending, 10, NO_WAIT)
        .await
        .expect("pending");
    assert_eq!(now_held[0].id, held[0].id);
}

pub(crate) fn resolution(record: &DeliveryRecord, next: NextStep) -> Resolution {
    Resolution {
        kind: record.kind,
        subject: record.subject.clone(),
        endpoint_id: record.endpoints[0].clone(),
        // The endpoints these resolutions are for are the admin's (none is stored).
        tenant_id: String::new(),
        event_type: record.event_type.clone(),
        attempt: record.attempt,
        received_at_ms: record.received_at_ms,
        test: false,
        conversation: record.conversation.clone(),
        next,
        log: None,
    }
}

async fn next_delivery(b: &dyn Backend) -> DeliveryRecord {
    let mut got = b
        .read_deliveries("d", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read deliveries");
    assert_eq!(got.len(), 1, "{got:?}");
    got.remove(0)
}

fn logged(record: &DeliveryRecord, at: u64) -> Resolution {
    let mut r = resolution(record, NextStep::Delivered);
    r.log = Some(AttemptLog {
        endpoint_id: r.endpoint_id.clone(),
        kind: record.kind,
        event_id: record.subject.clone(),
        event_type: record.event_type.clone(),
        webhook_id: format!("evt_{}", record.subject),
        attempt: record.attempt,
        at,
        duration_ms: 3,
        status: Some(200),
        error: None,
        response: "ok".into(),
    });
    r
}

/// Every entry id of `records`, once.
fn entry_ids(records: &[DeliveryRecord]) -> Vec<String> {
    let mut ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    ids.dedup();
    ids
}

pub async fn every_routed_event_is_read_for_delivery_once_with_its_data(b: Arc<dyn Backend>) {
    let stored = store_events(
        &*b,
        vec![
            entry(&["wamid.s1", "wamid.s2", "wamid.s3"]),
            entry(&["wamid.s4", "wamid.s5"]),
        ],
        &["ep_1"],
    )
    .await;
    let expected: Vec<String> = stored.into_iter().flatten().flatten().collect();
    assert_eq!(expected.len(), 5);
    let records = b
        .read_deliveries("d", ReadFrom::New, 100, NO_WAIT)
        .await
        .expect("read deliveries");
    let subjects: Vec<&str> = records.iter().map(|r| r.subject.as_str()).collect();
    assert_eq!(subjects, expected);
    for r in &records {
        let event = b.get_event(&r.subject).await.expect("get").expect("event");
        assert_eq!(
            r.data,
            event.data.get(),
            "a delivery carries its event's data"
        );
        assert_eq!(r.endpoints, ["ep_1"]);
        assert_eq!(r.attempt, 1);
    }
    let commit = AttemptCommit {
        resolutions: records.iter().map(|r| logged(r, 1)).collect(),
        acks: entry_ids(&records),
        stats: Vec::new(),
    };
    b.commit_attempts(&commit).await.expect("commit");
    let again = b
        .read_deliveries("d", ReadFrom::Pending, 100, NO_WAIT)
        .await
        .expect("pending");
    assert!(
        again.is_empty(),
        "acknowledged entries are not read again: {again:?}"
    );
}

pub async fn the_attempt_log_pages_newest_first_and_finds_each_attempt(b: Arc<dyn Backend>) {
    let wamids: Vec<String> = (0..5).map(|i| format!("wamid.a{i}")).collect();
    let wamids: Vec<&str> = wamids.iter().map(String::as_str).collect();
    store_events(&*b, vec![entry(&wamids)], &["ep_1"]).await;
    let records = b
        .read_deliveries("d", ReadFrom::New, 100, NO_WAIT)
        .await
        .expect("read deliveries");
    assert_eq!(records.len(), 5);
    // All five in one commit, then one more in another.
    let (first, last) = records.split_at(4);
    for (part, acks) in [(first, Vec::new()), (last, entry_ids(&records))] {
        let commit = AttemptCommit {
            resolutions: part.iter().map(|r| logged(r, 1)).collect(),
            acks,
            stats: Vec::new(),
        };
        b.commit_attempts(&commit).await.expect("commit");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = b
            .list_attempts("ep_1", cursor.as_deref(), 2)
            .await
            .expect("attempts");
        assert!(page.items.len() <= 2);
        seen.extend(page.items);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let events: Vec<&str> = seen.iter().map(|a| a.log.event_id.as_str()).collect();
    let newest_first: Vec<&str> = records.iter().rev().map(|r| r.subject.as_str()).collect();
    assert_eq!(events, newest_first, "every attempt once, newest first");
    for a in &seen {
        let found = b.get_attempt("ep_1", &a.id).await.expect("get");
        assert_eq!(found.map(|f| f.log), Some(a.log.clone()), "{}", a.id);
        let states = b
            .delivery_states(DeliveryKind::Event, &a.log.event_id, &["ep_1".to_string()])
            .await
            .expect("states");
        assert_eq!(states.len(), 1, "{states:?}");
        assert_eq!(states[0].status, DeliveryStatus::Delivered);
        assert_eq!(states[0].last_attempt_id.as_deref(), Some(a.id.as_str()));
    }
    let elsewhere = b.get_attempt("ep_2", &seen[0].id).await.expect("get");
    assert!(
        elsewhere.is_none(),
        "an attempt is found under its own endpoint only"
    );
}

pub async fn a_retry_keeps_its_subject_and_counts_its_attempt(b: Arc<dyn Backend>) {
    let ids = store_events(&*b, vec![entry(&["wamid.r1"])], &["ep_1"]).await;
    let first = next_delivery(&*b).await;
    assert_eq!(Some(&first.subject), ids[0][0].as_ref());
    assert_eq!(first.attempt, 1);
    let now = hookd::time::unix_ms();
    let commit = AttemptCommit {
        resolutions: vec![resolution(&first, NextStep::Retry { due_ms: now })],
        acks: vec![first.id.clone()],
        stats: Vec::new(),
    };
    b.commit_attempts(&commit).await.expect("commit");
    let (moved, _) = b.promote_due_retries(now + 1, 100).await.expect("promote");
    assert_eq!(moved, 1);
    let retry = next_delivery(&*b).await;
    assert_eq!(
        retry.subject, first.subject,
        "the webhook-id is made from it"
    );
    assert_eq!(retry.attempt, 2);
    assert_eq!(retry.data, first.data);
}

pub async fn a_dead_delivery_is_listed_and_replays_under_the_same_subject(b: Arc<dyn Backend>) {
    store_events(&*b, vec![entry(&["wamid.x1"])], &["ep_1"]).await;
    let first = next_delivery(&*b).await;
    let dead = NextStep::Dead {
        reason: "tried enough".into(),
    };
    let commit = AttemptCommit {
        resolutions: vec![resolution(&first, dead)],
        acks: vec![first.id.clone()],
        stats: Vec::new(),
    };
    b.commit_attempts(&commit).await.expect("commit");
    let page = b
        .list_dead(&DeadQuery {
            limit: 10,
            ..DeadQuery::default()
        })
        .await
        .expect("dead");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].event_id, first.subject);
    assert_eq!(page.items[0].reason, "tried enough");
    let ids: Vec<String> = page.items.iter().map(|d| d.id.clone()).collect();
    assert_eq!(b.requeue_dead(&ids).await.expect("requeue"), 1);
    let again = next_delivery(&*b).await;
    assert_eq!(again.subject, first.subject);
}

pub async fn pages_are_stable_under_concurrent_writes(b: Arc<dyn Backend>) {
    for i in 0..5 {
        store_events(&*b, vec![entry(&[&format!("wamid.p{i}")])], &[]).await;
    }
    let page = |cursor: Option<String>| EventQuery {
        cursor,
        limit: 2,
        ..EventQuery::default()
    };
    let first = b.list_events(&page(None)).await.expect("page 1");
    // New events arrive while the client pages.
    for i in 5..8 {
        store_events(&*b, vec![entry(&[&format!("wamid.p{i}")])], &[]).await;
    }
    let mut seen: Vec<String> = first.items.iter().map(|e| e.id.clone()).collect();
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        let next = b.list_events(&page(Some(c))).await.expect("page");
        seen.extend(next.items.iter().map(|e| e.id.clone()));
        cursor = next.next_cursor;
    }
    assert_eq!(seen.len(), 5, "each of the first five once: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by_key(|id| std::cmp::Reverse(id_order(id)));
    assert_eq!(seen, sorted, "newest first");
}

/// Event ids order as they were stored (a test-side reading of the id, for the assertion).
fn id_order(id: &str) -> (u64, u64) {
    let (a, b) = id.split_once('-').unwrap_or((id, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

pub async fn ids_and_cursors_it_never_made_are_refused_as_invalid_input(b: Arc<dyn Backend>) {
    for bad in ["evt", "99999999999999999999-0", "1-x", ""] {
        match b.get_event(bad).await {
            Err(StoreError::InvalidInput { parameter, .. }) => assert_eq!(parameter, "id"),
            other => panic!("{bad:?}: {other:?}"),
        }
        let query = EventQuery {
            cursor: Some(bad.to_string()),
            limit: 10,
            ..EventQuery::default()
        };
        match b.list_events(&query).await {
            Err(StoreError::InvalidInput { parameter, .. }) => assert_eq!(parameter, "cursor"),
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(matches!(
            b.list_quarantine(Some(bad), 10).await,
            Err(StoreError::InvalidInput { .. })
        ));
    }
}

pub async fn retention_trims_what_is_older_than_its_age(b: Arc<dyn Backend>) {
    let ids = store_events(&*b, vec![entry(&["wamid.t1"])], &[]).await;
    let id = ids[0][0].clone().expect("stored");
    assert!(b.get_event(&id).await.expect("get").is_some());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    b.trim().await.expect("trim");
    assert!(b.get_event(&id).await.expect("get").is_none());
}

pub async fn catalogue_changes_move_its_version_and_account_conflicts_change_nothing(
    b: Arc<dyn Backend>,
) {
    let v0 = b.catalogue_version().await.expect("version");
    let endpoint = tenant_with_endpoint(&*b).await;
    let v1 = b.catalogue_version().await.expect("version");
    assert_ne!(v1, v0);
    let accounts = vec!["A1".to_string(), "A2".to_string()];
    assert_eq!(
        b.assign_accounts("t_1", &accounts, &audit("account.assign", "t_1", "t_1"))
            .await
            .expect("assign"),
        None
    );
    let v2 = b.catalogue_version().await.expect("version");
    assert_ne!(v2, v1);
    let conflict = vec!["B1".to_string(), "A2".to_string()];
    assert_eq!(
        b.assign_accounts("t_2", &conflict, &audit("account.assign", "t_2", "t_2"))
            .await
            .expect("assign"),
        Some("A2".to_string())
    );
    let owners = b.account_owners().await.expect("owners");
    assert_eq!(owners.get("B1"), None, "all or nothing");
    assert_eq!(b.catalogue_version().await.expect("version"), v2);
    let listed = b.list_endpoints().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].endpoint, endpoint);
}

pub async fn every_change_is_recorded_with_it_and_a_change_not_made_leaves_no_record(
    b: Arc<dyn Backend>,
) {
    let endpoint = tenant_with_endpoint(&*b).await;
    let e = &endpoint.id;
    let key = hookd::model::ApiKey {
        id: "key_1".into(),
        tenant_id: "t_1".into(),
        created_at: 1,
    };
    b.put_api_key("hash1", &key, &audit("key.create", "key_1", "t_1"))
        .await
        .expect("key");
    b.assign_accounts(
        "t_1",
        &["A1".to_string()],
        &audit("account.assign", "t_1", "t_1"),
    )
    .await
    .expect("assign");
    // Changes that are not made: no record.
    let taken = b
        .assign_accounts(
            "t_2",
            &["A1".to_string()],
            &audit("account.assign", "t_2", "t_2"),
        )
        .await
        .expect("assign");
    assert_eq!(taken.as_deref(), Some("A1"));
    let gone = audit("endpoint.delete", "ep_none", "");
    assert!(!b.delete_endpoint("ep_none", &gone).await.expect("delete"));
    let other = audit("key.delete", "key_1", "t_2");
    assert!(
        !b.delete_api_key("t_2", "key_1", &other)
            .await
            .expect("delete")
    );
    let released = audit("account.release", "A9", "t_1");
    assert!(
        !b.release_account("t_1", "A9", &released)
            .await
            .expect("release")
    );
    let retried = audit("delivery.retry", e, "t_1");
    let no_delivery = b
        .retry_delivery(DeliveryKind::Event, "1-0", e, "whatsapp.messages", &retried)
        .await
        .expect("retry");
    assert!(!no_delivery);
    // Changes that are made: one record each, newest first.
    assert!(
        b.release_account("t_1", "A1", &released)
            .await
            .expect("release")
    );
    assert!(
        b.delete_api_key("t_1", "key_1", &audit("key.delete", "key_1", "t_1"))
            .await
            .expect("delete")
    );
    assert!(
        b.delete_endpoint(e, &audit("endpoint.delete", e, "t_1"))
            .await
            .expect("delete")
    );
    let all = all_audit(
        &*b,
        AuditQuery {
            limit: 100,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        actions(&all),
        [
            "endpoint.delete",
            "key.delete",
            "account.release",
            "account.assign",
            "key.create",
            "endpoint.create",
            "tenant.create",
        ]
    );
    let first = all.last().expect("records");
    assert!(!first.id.is_empty(), "storage gives each record its id");
    assert_eq!(first.address, "192.0.2.1");
    assert_eq!(
        first.changes,
        serde_json::json!({ "name": { "to": "t_1" } })
    );
    assert!(all.windows(2).all(|w| w[0].at >= w[1].at));
}

pub async fn the_audit_log_pages_newest_first_by_tenant_and_filter(b: Arc<dyn Backend>) {
    for i in 0..5 {
        let tenant = if i % 2 == 0 { "t_even" } else { "t_odd" };
        let mut r = audit(&format!("endpoint.step{i}"), &format!("ep_{i}"), tenant);
        if i == 4 {
            r.actor = "key_abc".into();
            r.outcome = Outcome::Refused;
            r.status = Some(404);
        }
        b.record_audit(&r).await.expect("record");
    }
    b.record_audit(&audit("tenant.create", "t_x", ""))
        .await
        .expect("record");
    // Two at a time, newest first, every record once.
    let mut q = AuditQuery {
        limit: 2,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = b.list_audit(&q).await.expect("page");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|r| r.object_id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["t_x", "ep_4", "ep_3", "ep_2", "ep_1", "ep_0"]);
    let of = |q: AuditQuery| {
        let b = b.clone();
        async move {
            all_audit(&*b, AuditQuery { limit: 2, ..q })
                .await
                .into_iter()
                .map(|r| r.object_id)
                .collect::<Vec<_>>()
        }
    };
    let even = of(AuditQuery {
        tenant_id: Some("t_even".into()),
        ..Default::default()
    });
    assert_eq!(even.await, ["ep_4", "ep_2", "ep_0"]);
    let odd = of(AuditQuery {
        tenant_id: Some("t_odd".into()),
        ..Default::default()
    });
    assert_eq!(odd.await, ["ep_3", "ep_1"]);
    let kind = of(AuditQuery {
        action: Some("endpoint.*".into()),
        outcome: Some(Outcome::Applied),
        ..Default::default()
    });
    assert_eq!(kind.await, ["ep_3", "ep_2", "ep_1", "ep_0"]);
    let by_key = of(AuditQuery {
        actor: Some("key_abc".into()),
        tenant_id: Some("t_even".into()),
        ..Default::default()
    });
    assert_eq!(by_key.await, ["ep_4"]);
    let one = of(AuditQuery {
        object_id: Some("ep_1".into()),
        ..Default::default()
    });
    assert_eq!(one.await, ["ep_1"]);
    let nothing_yet = of(AuditQuery {
        from_ms: Some(hookd::time::unix_ms() + 60_000),
        ..Default::default()
    });
    assert!(nothing_yet.await.is_empty());
}

pub async fn audit_retention_trims_old_records_and_their_tenant_copies(b: Arc<dyn Backend>) {
    b.record_audit(&audit("tenant.create", "t_1", "t_1"))
        .await
        .expect("record");
    // A tenant the Redis backend finds its audit stream by.
    let tenant = Tenant {
        id: "t_1".into(),
        name: "one".into(),
        created_at: 1,
    };
    b.put_tenant(&tenant, &audit("tenant.create", "t_1", "t_1"))
        .await
        .expect("tenant");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let fresh = audit("endpoint.create", "ep_new", "t_1");
    b.record_audit(&fresh).await.expect("record");
    b.trim().await.expect("trim");
    let all = all_audit(
        &*b,
        AuditQuery {
            limit: 10,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(actions(&all), ["endpoint.create"]);
    let of_tenant = all_audit(
        &*b,
        AuditQuery {
            limit: 10,
            tenant_id: Some("t_1".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(actions(&of_tenant), ["endpoint.create"]);
}

pub async fn an_idempotency_key_lets_one_request_through_and_replays_its_answer(
    b: Arc<dyn Backend>,
) {
    let ttl = Duration::from_secs(60);
    assert_eq!(
        b.claim_idempotency("k1", ttl).await.expect("claim"),
        IdempotencyClaim::Fresh
    );
    assert_eq!(
        b.claim_idempotency("k1", ttl).await.expect("claim"),
        IdempotencyClaim::InProgress,
        "only one request goes ahead"
    );
    b.settle_idempotency("k1", 201, "{\"id\":\"t_1\"}", ttl)
        .await
        .expect("settle");
    assert_eq!(
        b.claim_idempotency("k1", ttl).await.expect("claim"),
        IdempotencyClaim::Done {
            status: 201,
            body: "{\"id\":\"t_1\"}".into()
        }
    );
    // A first request that failed frees its key.
    assert_eq!(
        b.claim_idempotency("k2", ttl).await.expect("claim"),
        IdempotencyClaim::Fresh
    );
    b.release_idempotency("k2").await.expect("release");
    assert_eq!(
        b.claim_idempotency("k2", ttl).await.expect("claim"),
        IdempotencyClaim::Fresh
    );
}

pub async fn page_tokens_are_kept_per_source_and_page_with_their_records(b: Arc<dyn Backend>) {
    use hookd::model::PageToken;
    let token = |source: &str, page: &str, secret: &str| PageToken {
        source: source.into(),
        page_id: page.into(),
        token: secret.into(),
        stored_at: 7,
    };
    let set = |page: &str| audit("graph.page_token_set", page, "");
    b.put_page_token(&token("a", "41", "EAAP-one"), &set("41"))
        .await
        .expect("put");
    b.put_page_token(&token("a", "42", "EAAP-two"), &set("42"))
        .await
        .expect("put");
    b.put_page_token(&token("ab", "41", "EAAP-other-source"), &set("41"))
        .await
        .expect("put");
    b.put_page_token(&token("a", "41", "EAAP-replaced"), &set("41"))
        .await
        .expect("replace");
    let got = b.page_token("a", "41").await.expect("get").expect("stored");
    assert_eq!(got.token, "EAAP-replaced");
    let mut of_a: Vec<String> = b
        .page_tokens(Some("a"))
        .await
        .expect("list")
        .into_iter()
        .map(|t| format!("{}={}", t.page_id, t.token))
        .collect();
    of_a.sort();
    assert_eq!(
        of_a,
        ["41=EAAP-replaced", "42=EAAP-two"],
        "a source's own only"
    );
    assert!(b.page_token("a", "43").await.expect("get").is_none());

    let deleted = audit("graph.page_token_delete", "42", "");
    assert!(
        b.delete_page_token("a", "42", &deleted)
            .await
            .expect("delete")
    );
    assert!(
        !b.delete_page_token("a", "42", &deleted)
            .await
            .expect("delete again")
    );
    assert!(b.page_token("a", "42").await.expect("get").is_none());
    let records = every_audit_record(&*b).await;
    assert_eq!(
        actions(&records),
        [
            "graph.page_token_delete",
            "graph.page_token_set",
            "graph.page_token_set",
            "graph.page_token_set",
            "graph.page_token_set",
        ],
        "one record per change made, none for a token that was not there"
    );
}

pub async fn test_suites_are_kept_with_their_records_and_their_events_counted_apart(
    b: Arc<dyn Backend>,
) {
    use hookd::model::test_suite::{TestRun, TestSuite};
    let suite = |id: &str, created_at: u64| TestSuite {
        id: id.into(),
        name: "n".into(),
        tenant_id: "t_1".into(),
        source: "test".into(),
        object: "whatsapp_business_account".into(),
        account_id: "PN1".into(),
        endpoint_ids: vec!["ep_1".into()],
        types: vec!["whatsapp.messages".into()],
        created_at,
        runs: Vec::new(),
    };
    let created = audit("test_suite.create", "ts_b", "t_1");
    b.put_test_suite(&suite("ts_b", 2), &created)
        .await
        .expect("put");
    b.put_test_suite(&suite("ts_a", 1), &created)
        .await
        .expect("put");
    let mut ran = suite("ts_b", 2);
    ran.runs.push(TestRun {
        id: "run_1".into(),
        started_at: 3,
        sent: Vec::new(),
    });
    b.put_test_suite(&ran, &audit("test_suite.run", "ts_b", "t_1"))
        .await
        .expect("record a run");
    assert_eq!(b.test_suite("ts_b").await.expect("get"), Some(ran));
    let ids: Vec<String> = b
        .test_suites()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["ts_a", "ts_b"], "oldest first");
    let deleted = audit("test_suite.delete", "ts_a", "t_1");
    assert!(b.delete_test_suite("ts_a", &deleted).await.expect("delete"));
    assert!(!b.delete_test_suite("ts_a", &deleted).await.expect("again"));
    assert_eq!(b.test_suite("ts_a").await.expect("get"), None);
    let records = every_audit_record(&*b).await;
    assert_eq!(
        actions(&records),
        [
            "test_suite.delete",
            "test_suite.run",
            "test_suite.create",
            "test_suite.create"
        ]
    );

    // A sample's events are stored like Meta's, and counted apart from them.
    let mut sample = entry(&["wamid.sample"]);
    sample.request_id = hookd::suites::request_id("ts_b", "run_1", 0);
    let ids = store_events(&*b, vec![sample, entry(&["wamid.real"])], &[]).await;
    assert!(ids.iter().all(|e| e[0].is_some()), "{ids:?}");
    let stats = b.stats().await.expect("stats");
    assert_eq!((stats.received, stats.events, stats.test_events), (1, 1, 1));
    assert_eq!(stats.events_by_type.get("whatsapp.messages"), Some(&1));
    let test_event = b
        .get_event(ids[0][0].as_deref().expect("id"))
        .await
        .expect("get")
        .expect("stored");
    let origin = test_event.test.expect("marked as a test");
    assert_eq!(
        (origin.suite_id.as_str(), origin.run_id.as_str()),
        ("ts_b", "run_1")
    );
}

pub async fn a_quarantined_body_goes_back_to_the_journal_as_received_or_is_deleted(
    b: Arc<dyn Backend>,
) {
    // Two journaled bodies the normalizer could not split.
    let mut sent = entry(&["wamid.q1"]);
    sent.signature = "sha256=abc".into();
    sent.request_id = "req-q1".into();
    let ids = b
        .append_journal(&[sent.clone(), entry(&["wamid.q2"])])
        .await
        .expect("append");
    let read = b
        .read_journal("c", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read");
    let quarantined: Vec<Normalized> = read
        .iter()
        .zip(&ids)
        .map(|(r, id)| Normalized::Quarantine {
            journal_id: id.clone(),
            entry: r.entry.clone().expect("entry"),
            error: "could not be split".into(),
        })
        .collect();
    b.commit_normalized(&quarantined).await.expect("quarantine");
    let listed = b.list_quarantine(None, 10).await.expect("list").items;
    assert_eq!(listed.len(), 2);
    let (newest, oldest) = (listed[0].id.clone(), listed[1].id.clone());

    let reprocess = audit("quarantine.reprocess", &oldest, "");
    let journal_id = b
        .requeue_quarantined(&oldest, &reprocess)
        .await
        .expect("requeue")
        .expect("it was there");
    let back = b
        .read_journal("c", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read");
    assert_eq!(back.len(), 1, "back in the journal once");
    assert_eq!(back[0].id, journal_id);
    let got = back[0].entry.as_ref().expect("entry");
    assert_eq!(
        (
            &got.body,
            &got.source,
            got.received_at_ms,
            &got.request_id,
            &got.signature
        ),
        (
            &sent.body,
            &sent.source,
            sent.received_at_ms,
            &sent.request_id,
            &sent.signature
        ),
        "as it was received"
    );
    assert!(
        b.requeue_quarantined(&oldest, &reprocess)
            .await
            .expect("again")
            .is_none()
    );

    let delete = audit("quarantine.delete", &newest, "");
    assert!(
        b.delete_quarantined(&newest, &delete)
            .await
            .expect("delete")
    );
    assert!(!b.delete_quarantined(&newest, &delete).await.expect("again"));
    assert!(
        b.list_quarantine(None, 10)
            .await
            .expect("list")
            .items
            .is_empty()
    );
    assert!(matches!(
        b.delete_quarantined("not-an-id", &delete).await,
        Err(StoreError::InvalidInput { .. })
    ));
    let records = every_audit_record(&*b).await;
    assert_eq!(
        actions(&records),
        ["quarantine.delete", "quarantine.reprocess"],
        "one record per change made"
    );
}

pub async fn a_deleted_event_leaves_every_listing_and_its_deliveries_but_not_its_dedup_key(
    b: Arc<dyn Backend>,
) {
    let stored = store_events(&*b, vec![entry(&["wamid.x1", "wamid.x2"])], &["ep_1"]).await;
    let ids: Vec<String> = stored.into_iter().flatten().flatten().collect();
    let (gone, kept) = (ids[0].clone(), ids[1].clone());
    // One delivery attempted and failed, so it has a recorded state; then both queued again.
    let record = b
        .read_deliveries("d", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read")
        .into_iter()
        .find(|r| r.subject == gone)
        .expect("a delivery of it");
    let mut failed = resolution(&record, NextStep::Retry { due_ms: 0 });
    failed.log = None;
    b.commit_attempts(&AttemptCommit {
        resolutions: vec![failed],
        acks: Vec::new(),
        stats: Vec::new(),
    })
    .await
    .expect("commit");
    assert!(
        !b.delivery_states(DeliveryKind::Event, &gone, &["ep_1".into()])
            .await
            .expect("states")
            .is_empty()
    );

    let deleted = audit("event.delete", &gone, "");
    assert!(b.delete_event(&gone, &deleted).await.expect("delete"));
    assert!(b.get_event(&gone).await.expect("get").is_none());
    for query in [
        EventQuery::default(),
        EventQuery {
            event_type: Some("whatsapp.messages".into()),
            ..EventQuery::default()
        },
        EventQuery {
            account_id: Some("PN1".into()),
            ..EventQuery::default()
        },
    ] {
        let listed = b
            .list_events(&EventQuery { limit: 10, ..query })
            .await
            .expect("list");
        let listed: Vec<&str> = listed.items.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(listed, [kept.as_str()]);
    }
    assert!(
        b.delivery_states(DeliveryKind::Event, &gone, &["ep_1".into()])
            .await
            .expect("states")
            .is_empty()
    );
    // Its retry comes due and finds it gone; the other event's delivery is untouched.
    b.promote_due_retries(u64::MAX, 100).await.expect("promote");
    let pending = b
        .read_deliveries("d", ReadFrom::New, 10, NO_WAIT)
        .await
        .expect("read");
    assert!(pending.iter().all(|r| r.subject != gone), "{pending:?}");

    // Meta's resend is still a duplicate.
    let again = store_events(&*b, vec![entry(&["wamid.x1"])], &["ep_1"]).await;
    assert_eq!(again, vec![vec![None]]);
    assert!(!b.delete_event(&gone, &deleted).await.expect("again"));
    let records = every_audit_record(&*b).await;
    assert_eq!(actions(&records), ["event.delete"]);
}

/// Runs every guarantee against the backend `make` builds (fresh for each test).
macro_rules! contract_suite {
    ($backend:ident, $make:expr $(, shared: $($shared:ident),+)?) => {
        mod $backend {
            use super::*;

            macro_rules! guarantee {
                ($name:ident) => {
                    guarantee!($name, |_| {});
                };
                ($name:ident, $tune:expr) => {
                    #[actix_web::test]
                    async fn $name() {
                        let subject = $make($tune).await;
                        super::$name(subject.backend.clone()).await;
                    }
                };
            }

            guarantee!(a_journaled_batch_is_read_back_whole_and_in_order);
            guarantee!(dedup_is_atomic_with_the_event);
            guarantee!(an_entry_read_but_not_committed_is_read_again_and_stored_once);
            guarantee!(pending_reads_page_through_everything_held_then_start_over);
            guarantee!(every_routed_event_is_read_for_delivery_once_with_its_data);
            guarantee!(the_attempt_log_pages_newest_first_and_finds_each_attempt);
            guarantee!(a_retry_keeps_its_subject_and_counts_its_attempt);
            guarantee!(a_dead_delivery_is_listed_and_replays_under_the_same_subject);
            guarantee!(pages_are_stable_under_concurrent_writes);
            guarantee!(ids_and_cursors_it_never_made_are_refused_as_invalid_input);
            guarantee!(
                retention_trims_what_is_older_than_its_age,
                |s: &mut Settings| { s.retention.stream_max_age = Duration::from_secs(1) }
            );
            guarantee!(catalogue_changes_move_its_version_and_account_conflicts_change_nothing);
            guarantee!(an_idempotency_key_lets_one_request_through_and_replays_its_answer);
            guarantee!(every_change_is_recorded_with_it_and_a_change_not_made_leaves_no_record);
            guarantee!(the_audit_log_pages_newest_first_by_tenant_and_filter);
            guarantee!(page_tokens_are_kept_per_source_and_page_with_their_records);
            guarantee!(test_suites_are_kept_with_their_records_and_their_events_counted_apart);
            guarantee!(a_quarantined_body_goes_back_to_the_journal_as_received_or_is_deleted);
            guarantee!(a_deleted_event_leaves_every_listing_and_its_deliveries_but_not_its_dedup_key);
            guarantee!(
                audit_retention_trims_old_records_and_their_tenant_copies,
                |s: &mut Settings| { s.audit.retention = Duration::from_secs(1) }
            );
            guarantee!(a_conversation_goes_one_event_at_a_time_in_the_order_received);
            guarantee!(a_dead_head_releases_its_conversation_and_its_dead_letter_says_so);
            guarantee!(a_status_behind_a_later_one_of_its_message_is_marked_stale);
            guarantee!(a_head_whose_event_is_gone_lets_the_next_go);
            guarantee!(a_tenants_backlog_does_not_stand_in_front_of_another_tenants_deliveries);
            // What only a backend shared by several instances promises.
            $($(guarantee!($shared);)+)?
        }
    };
}

contract_suite!(
    redis,
    redis_subject,
    shared: a_stale_entry_moves_to_the_live_consumer,
    the_journal_lease_has_one_holder_and_a_stalled_one_cannot_commit
);
contract_suite!(
    redis_partitioned,
    partitioned_subject,
    shared: a_stale_entry_moves_to_the_live_consumer,
    the_journal_lease_has_one_holder_and_a_stalled_one_cannot_commit
);
contract_suite!(
    redis_cluster,
    cluster_subject,
    shared: a_stale_entry_moves_to_the_live_consumer,
    the_journal_lease_has_one_holder_and_a_stalled_one_cannot_commit
);
contract_suite!(embedded, embedded_subject);
