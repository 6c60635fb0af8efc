//! `Dispatcher`: the deliveries stream's consumer. It reads entries while this instance has
//! room for more attempts, hands each endpoint's share to that endpoint's lane (its own
//! concurrency and rate limits, so a slow endpoint holds only its own slots), and commits
//! outcomes in batches: attempt logs, retries, dead letters and acknowledgements together.
//!
//! It runs on an arbiter of its own. The actor is thin: what an attempt sends and what follows
//! it are plain functions in [`crate::delivery`].

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, Semaphore, mpsc};

use super::messages::{DrainDeliveries, ReadPending};
use crate::config::DeliverySettings;
use crate::delivery::client::{Attempted, Outbound};
use crate::delivery::outcome::{Next, after_attempt};
use crate::delivery::payload::{OutboundEvent, event_body, webhook_id};
use crate::delivery::raw_view::{RawBody, visible_body};
use crate::delivery::request::signed_request;
use crate::delivery::routes::Routes;
use crate::delivery::schedule::classify;
use crate::delivery::throughput::{Throughput, lane_room};
use crate::delivery::{RESPONSE_KEEP_BYTES, stats};
use crate::metrics as m;
use crate::model::{Endpoint, LiveEndpoint};
use crate::stage_health::StageReport;
use crate::store::{
    AttemptCommit, AttemptLog, Backend, DeliveryKind, DeliveryRecord, NextStep, ReadFrom,
    Resolution, StoreError,
};
use crate::time::unix_ms;

/// Outcomes committed in one round at most.
const COMMIT_MAX: usize = 512;
/// A lane may queue what it completes in this long. An attempt that has waited this long for
/// its endpoint's permit, in a lane holding more than it has room for now, goes back to Redis:
/// an endpoint that stops answering gives the instance's room back within about this long.
const LANE_DRAIN: Duration = Duration::from_secs(1);

/// One endpoint's share of this instance: its concurrency, its rate, its queue.
struct Lane {
    permits: Semaphore,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Attempts waiting for or holding a permit.
    queued: Cell<usize>,
    /// Attempts the lane may queue however slow its endpoint.
    share: usize,
    throughput: RefCell<Throughput>,
    /// The endpoint version the lane was built for.
    updated_at: u64,
}

impl Lane {
    /// Attempts the lane may hold now: its share, or about `LANE_DRAIN` of its own work.
    fn room(&self, ceiling: usize) -> usize {
        let per_second = self.throughput.borrow_mut().per_second(Instant::now());
        lane_room(self.share, per_second, LANE_DRAIN, ceiling)
    }
}

/// One endpoint's share of a delivery, finished (attempted or not).
struct Finished {
    entry_id: String,
    resolution: Resolution,
    platform: String,
    status: Option<u16>,
    /// The ingress request id, so one request can be followed through every stage's logs.
    request_id: String,
}

struct Shared {
    store: Arc<dyn Backend>,
    health: StageReport,
    consumer: String,
    settings: DeliverySettings,
    /// How long a read waits for new deliveries (`normalizer.block`, which is checked to stay
    /// below the storage command timeout: a read answered after it would leave its entries
    /// held and unseen until they are taken over).
    read_block: Duration,
    routes: Routes,
    client: Outbound,
    lanes: RefCell<HashMap<String, Rc<Lane>>>,
    /// Endpoint shares started and not yet committed.
    in_flight: Cell<usize>,
    /// Entries being worked on → endpoint shares not yet resolved.
    held: RefCell<HashMap<String, usize>>,
    /// While a pending read is under way, the entries acknowledged meanwhile: its answer may
    /// still list them, and they must not be attempted again.
    acked_during_read: RefCell<Option<HashSet<String>>>,
    wake: Notify,
    draining: Cell<bool>,
    read_pending: Cell<bool>,
    results: mpsc::UnboundedSender<Finished>,
    receiver: RefCell<Option<mpsc::UnboundedReceiver<Finished>>>,
}

pub struct Dispatcher {
    shared: Rc<Shared>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Backend>,
        consumer: String,
        (settings, read_block): (DeliverySettings, Duration),
        routes: Routes,
        client: Outbound,
        health: StageReport,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Dispatcher {
            shared: Rc::new(Shared {
                store,
                health,
                consumer,
                settings,
                read_block,
                routes,
                client,
                lanes: RefCell::new(HashMap::new()),
                in_flight: Cell::new(0),
                held: RefCell::new(HashMap::new()),
                acked_during_read: RefCell::new(None),
                wake: Notify::new(),
                draining: Cell::new(false),
                // Whatever this consumer held before a crash or restart comes first.
                read_pending: Cell::new(true),
                results: tx,
                receiver: RefCell::new(Some(rx)),
            }),
        }
    }
}

impl Actor for Dispatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(16);
        // The committer outlives restarts of the read loop: outcomes already produced must
        // still be written.
        if let Some(rx) = self.shared.receiver.borrow_mut().take() {
            actix::spawn(commit_loop(self.shared.clone(), rx));
        }
        if self.shared.draining.get() {
            return;
        }
        let shared = self.shared.clone();
        ctx.spawn(read_loop(shared).into_actor(self).map(|result, _, ctx| {
            // The loop ends for good only when draining; the actor then stays idle until its
            // arbiter stops (stopping it would make the supervisor start it again).
            if let Err(e) = result {
                tracing::error!(error = %e, "dispatcher failed; restarting it");
                ctx.stop();
            }
        }));
    }
}

impl Supervised for Dispatcher {
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        metrics::counter!(m::ACTOR_RESTARTS, "actor" => "dispatcher").increment(1);
        self.shared.read_pending.set(true);
    }
}

impl Handler<ReadPending> for Dispatcher {
    type Result = ();

    fn handle(&mut self, _msg: ReadPending, _ctx: &mut Self::Context) {
        self.shared.read_pending.set(true);
    }
}

impl Handler<DrainDeliveries> for Dispatcher {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: DrainDeliveries, _ctx: &mut Self::Context) -> Self::Result {
        let shared = self.shared.clone();
        shared.draining.set(true);
        shared.wake.notify_waiters();
        Box::pin(async move {
            // Attempts still running when the time is up are not acknowledged: another
            // instance (or this one, restarted) sends them again under the same webhook-id.
            let limit = shared.settings.endpoint_timeout + Duration::from_secs(2);
            let waited = tokio::time::timeout(limit, async {
                while shared.in_flight.get() > 0 {
                    shared.wake.notified().await;
                }
            })
            .await;
            if waited.is_err() {
                tracing::warn!(
                    in_flight = shared.in_flight.get(),
                    "stopping with deliveries in flight; they will be sent again"
                );
            }
        })
    }
}

/// Reads deliveries while there is room, until draining. A protocol error ends it (and the
/// actor restarts); an unreachable store is waited out.
async fn read_loop(sh: Rc<Shared>) -> Result<(), StoreError> {
    let batch = sh.settings.batch;
    let mut backoff = Duration::ZERO;
    loop {
        while !sh.draining.get() && sh.in_flight.get() + batch > sh.settings.max_in_flight {
            sh.wake.notified().await;
        }
        if sh.draining.get() {
            return Ok(());
        }
        let mode = if sh.read_pending.replace(false) {
            ReadFrom::Pending
        } else {
            ReadFrom::New
        };
        if mode == ReadFrom::Pending {
            *sh.acked_during_read.borrow_mut() = Some(HashSet::new());
        }
        let read = sh
            .store
            .read_deliveries(&sh.consumer, mode, batch, sh.read_block)
            .await;
        let acked_meanwhile = sh.acked_during_read.borrow_mut().take().unwrap_or_default();
        sh.health.note(&read);
        let records = match read {
            Ok(r) => {
                backoff = Duration::ZERO;
                r
            }
            Err(StoreError::Protocol(e)) => return Err(StoreError::Protocol(e)),
            Err(e) => {
                if mode == ReadFrom::Pending {
                    sh.read_pending.set(true);
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(5));
                tracing::warn!(error = %e, retry_in = ?backoff, "dispatcher cannot read deliveries");
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        let read_count = records.len();
        let mut fresh = 0;
        for entry in entries_of(records) {
            // A pending read also returns entries this instance is working on right now, or
            // finished while the read was under way.
            let id = &entry[0].id;
            if sh.held.borrow().contains_key(id) || acked_meanwhile.contains(id) {
                continue;
            }
            fresh += 1;
            dispatch(&sh, entry);
        }
        if mode == ReadFrom::Pending && fresh > 0 {
            sh.read_pending.set(true);
        }
        metrics::gauge!(m::DELIVERY_IN_FLIGHT).set(sh.in_flight.get() as f64);
        // A short read means the queue is nearly empty: let more gather for the next one.
        if fresh > 0 && read_count < batch && !sh.settings.linger.is_zero() {
            tokio::time::sleep(sh.settings.linger).await;
        }
    }
}

/// The records of a read, one group per entry (a backend returns an entry's records
/// together).
fn entries_of(records: Vec<DeliveryRecord>) -> Vec<Vec<DeliveryRecord>> {
    let mut entries: Vec<Vec<DeliveryRecord>> = Vec::new();
    for record in records {
        match entries.last_mut() {
            Some(entry) if entry[0].id == record.id => entry.push(record),
            _ => entries.push(vec![record]),
        }
    }
    entries
}

/// Starts every endpoint's share of every record of one entry; the entry is held until all
/// of them are resolved.
fn dispatch(sh: &Rc<Shared>, entry: Vec<DeliveryRecord>) {
    let entry: Vec<(DeliveryRecord, Vec<String>)> = entry
        .into_iter()
        .map(|record| {
            let mut endpoints = record.endpoints.clone();
            endpoints.sort();
            endpoints.dedup();
            (record, endpoints)
        })
        .collect();
    let shares: usize = entry.iter().map(|(_, eps)| eps.len()).sum();
    if shares == 0 {
        // Nothing to do: acknowledged with the next commit.
        if let Some((record, _)) = entry.into_iter().next() {
            finish_empty(sh, record);
        }
        return;
    }
    sh.held.borrow_mut().insert(entry[0].0.id.clone(), shares);
    let table = sh.routes.current();
    for (record, endpoints) in entry {
        let record = Rc::new(record);
        for ep in endpoints {
            sh.in_flight.set(sh.in_flight.get() + 1);
            let Some(live) = table.endpoint(&ep).cloned() else {
                // Another instance may have routed to an endpoint created a moment ago that
                // this instance's table does not hold yet: ask the store before giving up.
                actix::spawn(unknown_endpoint(sh.clone(), record.clone(), ep));
                continue;
            };
            if !live.active() {
                dead_letter_disabled(sh, &record, &live);
                continue;
            }
            let lane = lane_for(sh, &live);
            if lane.queued.get() >= lane.room(sh.settings.max_in_flight) {
                defer(sh, &record, &live);
                continue;
            }
            lane.queued.set(lane.queued.get() + 1);
            actix::spawn(attempt(sh.clone(), lane, live, record.clone()));
        }
    }
}

/// Puts one endpoint's share of a delivery back in Redis, unattempted, for a little later.
fn defer(sh: &Rc<Shared>, record: &DeliveryRecord, live: &LiveEndpoint) {
    let delay = live
        .endpoint
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(sh.settings.endpoint_timeout)
        .max(Duration::from_secs(1));
    metrics::counter!(m::DELIVERY_DEFERRED).increment(1);
    let due_ms = unix_ms() + delay.as_millis() as u64;
    let ep = &live.endpoint;
    resolve(
        sh,
        record,
        &ep.id,
        &ep.tenant_id,
        NextStep::Defer { due_ms },
        None,
        None,
    );
}

/// An endpoint missing from the table: attempted if the store has it, dropped if it was
/// deleted, retried later if the store cannot say.
async fn unknown_endpoint(sh: Rc<Shared>, record: Rc<DeliveryRecord>, ep: String) {
    match sh.store.get_endpoint(&ep).await {
        Ok(Some(live)) if live.active() => {
            let lane = lane_for(&sh, &live);
            lane.queued.set(lane.queued.get() + 1);
            attempt(sh, lane, Arc::new(live), record).await;
        }
        Ok(Some(live)) => dead_letter_disabled(&sh, &record, &live),
        Ok(None) => resolve(&sh, &record, &ep, "", NextStep::Drop, None, None),
        Err(e) => {
            tracing::warn!(error = %e, endpoint = %ep, "cannot look an endpoint up; deferring");
            let due_ms = unix_ms() + 1000;
            resolve(
                &sh,
                &record,
                &ep,
                "",
                NextStep::Defer { due_ms },
                None,
                None,
            );
        }
    }
}

/// A delivery to an endpoint that is turned off goes to the dead stream unattempted, to be
/// replayed once it is on again.
fn dead_letter_disabled(sh: &Rc<Shared>, record: &DeliveryRecord, live: &LiveEndpoint) {
    let reason = match &live.health.disabled_reason {
        Some(r) => format!("endpoint disabled ({r})"),
        None => "endpoint disabled".to_string(),
    };
    metrics::counter!(m::DEAD_LETTERS, "reason" => "disabled").increment(1);
    let (ep, tenant) = (&live.endpoint.id, &live.endpoint.tenant_id);
    resolve(
        sh,
        record,
        ep,
        tenant,
        NextStep::Dead { reason },
        None,
        None,
    );
}

fn finish_empty(sh: &Rc<Shared>, record: DeliveryRecord) {
    // Counted as one share so the commit loop acknowledges the entry.
    sh.held.borrow_mut().insert(record.id.clone(), 1);
    sh.in_flight.set(sh.in_flight.get() + 1);
    let rc = Rc::new(record);
    resolve(sh, &rc, "", "", NextStep::Drop, None, None);
}

/// Hands one endpoint's outcome to the commit loop.
fn resolve(
    sh: &Rc<Shared>,
    record: &DeliveryRecord,
    endpoint_id: &str,
    tenant_id: &str,
    next: NextStep,
    log: Option<AttemptLog>,
    status: Option<u16>,
) {
    let finished = Finished {
        entry_id: record.id.clone(),
        platform: record.platform.clone(),
        status,
        request_id: record.request_id.clone(),
        resolution: Resolution {
            kind: record.kind,
            subject: record.subject.clone(),
            endpoint_id: endpoint_id.to_string(),
            tenant_id: tenant_id.to_string(),
            event_type: record.event_type.clone(),
            attempt: record.attempt,
            received_at_ms: record.received_at_ms,
            test: crate::suites::is_test(&record.request_id),
            conversation: record.conversation.clone(),
            next,
            log,
        },
    };
    // The receiver lives as long as the arbiter; a send can only fail during teardown.
    let _ = sh.results.send(finished);
}

fn lane_for(sh: &Rc<Shared>, live: &LiveEndpoint) -> Rc<Lane> {
    let e = &live.endpoint;
    let mut lanes = sh.lanes.borrow_mut();
    if let Some(lane) = lanes.get(&e.id).filter(|l| l.updated_at == e.updated_at) {
        return lane.clone();
    }
    let concurrency = e
        .max_in_flight
        .map(|n| n as usize)
        .unwrap_or(sh.settings.endpoint_max_in_flight);
    let lane = Rc::new(Lane {
        permits: Semaphore::new(concurrency),
        limiter: e
            .rate_limit
            .and_then(NonZeroU32::new)
            .map(|r| RateLimiter::direct(Quota::per_second(r))),
        queued: Cell::new(0),
        // However slow its endpoint, a lane may queue a batch's worth or four rounds of its
        // concurrency, at most half of this instance's room; a lane that keeps up earns more
        // (`Lane::room`). The rest waits in Redis.
        share: (concurrency * 4)
            .max(sh.settings.batch)
            .min(sh.settings.max_in_flight / 2)
            .max(1),
        throughput: RefCell::new(Throughput::new(Instant::now())),
        updated_at: e.updated_at,
    });
    lanes.insert(e.id.clone(), lane.clone());
    lane
}

/// One attempt: wait for the endpoint's permit and rate, send, decide what follows.
async fn attempt(
    sh: Rc<Shared>,
    lane: Rc<Lane>,
    live: Arc<LiveEndpoint>,
    record: Rc<DeliveryRecord>,
) {
    let permit = loop {
        match tokio::time::timeout(LANE_DRAIN, lane.permits.acquire()).await {
            Ok(permit) => break permit,
            // The endpoint no longer keeps up with what it queued: the excess goes back to
            // Redis and the instance's room to other endpoints.
            Err(_) if lane.queued.get() > lane.room(sh.settings.max_in_flight) => {
                lane.queued.set(lane.queued.get() - 1);
                return defer(&sh, &record, &live);
            }
            Err(_) => {}
        }
    };
    if let Some(limiter) = &lane.limiter {
        limiter.until_ready().await;
    }
    let (next, log, status) = send_once(&sh, &live, &record).await;
    drop(permit);
    lane.queued.set(lane.queued.get() - 1);
    lane.throughput.borrow_mut().record(Instant::now());
    let ep = &live.endpoint;
    resolve(&sh, &record, &ep.id, &ep.tenant_id, next, log, status);
}

/// Builds, signs and sends the request; returns what follows, the attempt log and the status.
async fn send_once(
    sh: &Shared,
    live: &LiveEndpoint,
    record: &DeliveryRecord,
) -> (NextStep, Option<AttemptLog>, Option<u16>) {
    let ep = &live.endpoint;
    let raw = record.kind == DeliveryKind::Raw;
    let (body, raw_body) = match body_of(sh, record, ep).await {
        Ok(Ok(b)) => b,
        Ok(Err(reason)) => {
            metrics::counter!(m::DEAD_LETTERS, "reason" => "missing").increment(1);
            return (NextStep::Dead { reason }, None, None);
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a raw delivery's body; deferring it");
            let due_ms = unix_ms() + 1000;
            return (NextStep::Defer { due_ms }, None, None);
        }
    };
    let started_ms = unix_ms();
    let wid = webhook_id(raw, &record.subject);
    let result = match signed_request(ep, &wid, body, started_ms, sh.settings.endpoint_timeout) {
        Ok(mut req) => {
            if let Some(label) = raw_body {
                req.headers.push((
                    hyper::header::HeaderName::from_static(RAW_BODY_HEADER),
                    hyper::header::HeaderValue::from_static(label),
                ));
            }
            sh.client.post(req).await
        }
        Err(e) => Attempted {
            error: Some(e.to_string()),
            blocked: true,
            ..Attempted::default()
        },
    };
    let schedule: Vec<Duration> = match &ep.retry_schedule_ms {
        Some(ms) => ms.iter().map(|m| Duration::from_millis(*m)).collect(),
        None => sh.settings.retry_schedule.clone(),
    };
    let verdict = classify(
        result.status,
        result.retry_after.as_deref(),
        sh.settings.retry_after_max,
    );
    let unit: f64 = rand::random();
    let next = if result.blocked {
        // A refused address or a broken URL will not fix itself by waiting.
        NextStep::Dead {
            reason: result.error.clone().unwrap_or_default(),
        }
    } else {
        match after_attempt(
            verdict,
            record.attempt,
            &schedule,
            sh.settings.retry_jitter,
            unit,
        ) {
            Next::Delivered => NextStep::Delivered,
            Next::Retry { delay } => NextStep::Retry {
                due_ms: unix_ms() + delay.as_millis() as u64,
            },
            Next::Dead => NextStep::Dead {
                reason: format!("{} attempts failed", record.attempt),
            },
            Next::Gone => NextStep::Gone,
        }
    };
    let mut response = result.response;
    if response.len() > RESPONSE_KEEP_BYTES {
        let mut cut = RESPONSE_KEEP_BYTES;
        while !response.is_char_boundary(cut) {
            cut -= 1;
        }
        response.truncate(cut);
    }
    let log = AttemptLog {
        endpoint_id: ep.id.clone(),
        kind: record.kind,
        event_id: record.subject.clone(),
        event_type: record.event_type.clone(),
        webhook_id: wid,
        attempt: record.attempt,
        at: started_ms,
        duration_ms: result.duration.as_millis() as u64,
        status: result.status,
        error: result.error,
        response,
    };
    (next, Some(log), result.status)
}

/// Tells a raw-mode receiver whether it got Meta's bytes (`original`) or only the parts of a
/// batched body its endpoint may see (`filtered`).
pub const RAW_BODY_HEADER: &str = "x-hookd-body";

/// The bytes to send (the event as JSON, or in raw mode Meta's body as far as the endpoint may
/// see it, with the `x-hookd-body` value), or why there is nothing to send.
async fn body_of(
    sh: &Shared,
    record: &DeliveryRecord,
    endpoint: &Endpoint,
) -> Result<Result<(Bytes, Option<&'static str>), String>, StoreError> {
    match record.kind {
        DeliveryKind::Event => {
            if record.data.is_empty() {
                return Ok(Err("the delivery carries no event".into()));
            }
            Ok(Ok((
                Bytes::from(event_body(&OutboundEvent {
                    id: &record.subject,
                    event_type: &record.event_type,
                    platform: &record.platform,
                    source: &record.source,
                    account_id: &record.account_id,
                    received_at: record.received_at_ms,
                    occurred_at: record.occurred_at_ms,
                    data: &record.data,
                    identity: &record.identity,
                    test: crate::suites::is_test(&record.request_id),
                })),
                None,
            )))
        }
        DeliveryKind::Raw => {
            let Some(entry) = sh.store.journal_entry(&record.subject).await? else {
                return Ok(Err(
                    "the original request is no longer in the journal".into()
                ));
            };
            let table = sh.routes.current();
            if table.sees_everything(endpoint) {
                return Ok(Ok((entry.body, Some("original"))));
            }
            let view = visible_body(&entry.body, |account, entry_id| {
                table.sees(endpoint, account, entry_id)
            });
            let label = Some(view.label());
            Ok(match view {
                RawBody::Original => Ok((entry.body, label)),
                RawBody::Filtered(b) => Ok((Bytes::from(b), label)),
                RawBody::Nothing => {
                    Err("no part of the request belongs to the endpoint's accounts".into())
                }
            })
        }
    }
}

/// Commits outcomes in batches; an entry is acknowledged with its last endpoint's outcome.
/// A failed commit is retried as it is (nothing was written), so nothing is lost and the
/// instance stops reading until Redis is back.
async fn commit_loop(sh: Rc<Shared>, mut rx: mpsc::UnboundedReceiver<Finished>) {
    while let Some(first) = rx.recv().await {
        // Outcomes of a light load arrive one by one: wait a moment so one commit takes many.
        if rx.len() < COMMIT_MAX && !sh.settings.linger.is_zero() {
            tokio::time::sleep(sh.settings.linger).await;
        }
        let mut batch = vec![first];
        while batch.len() < COMMIT_MAX {
            match rx.try_recv() {
                Ok(f) => batch.push(f),
                Err(_) => break,
            }
        }
        let mut commit = AttemptCommit::default();
        {
            // A finished entry stays held until its acknowledgement is written: a pending
            // read meanwhile must not hand it out again (a conversation's next event may
            // already be on its way once the commit lands).
            let mut held = sh.held.borrow_mut();
            for f in &batch {
                if let Some(left) = held.get_mut(&f.entry_id)
                    && *left > 0
                {
                    *left -= 1;
                    if *left == 0 {
                        commit.acks.push(f.entry_id.clone());
                    }
                }
            }
        }
        commit.resolutions = batch
            .iter()
            .filter(|f| !f.resolution.endpoint_id.is_empty())
            .map(|f| f.resolution.clone())
            .collect();
        commit.stats = stats::increments(&commit.resolutions);
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            let committed = sh.store.commit_attempts(&commit).await;
            sh.health.note(&committed);
            match committed {
                Ok(()) => {
                    metrics::histogram!(m::DELIVERY_COMMIT_DURATION)
                        .record(started.elapsed().as_secs_f64());
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot commit delivery outcomes");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        {
            let mut held = sh.held.borrow_mut();
            for id in &commit.acks {
                held.remove(id);
            }
            if let Some(acked) = sh.acked_during_read.borrow_mut().as_mut() {
                acked.extend(commit.acks.iter().cloned());
            }
        }
        let label = sh.settings.endpoint_metrics_label;
        for f in &batch {
            record_attempt(f, label);
            if f.resolution.next == NextStep::Gone {
                sh.routes.disable(&f.resolution.endpoint_id, "gone");
            }
        }
        sh.in_flight.set(sh.in_flight.get() - batch.len());
        metrics::gauge!(m::DELIVERY_IN_FLIGHT).set(sh.in_flight.get() as f64);
        sh.wake.notify_waiters();
    }
}

fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        _ => "error",
    }
}

/// Counts one committed attempt and logs it under the request id that brought its event.
fn record_attempt(f: &Finished, endpoint_label: bool) {
    let r = &f.resolution;
    let Some(log) = &r.log else { return };
    let outcome = match &r.next {
        NextStep::Delivered => "delivered",
        NextStep::Retry { .. } => "retry",
        NextStep::Gone => "gone",
        _ => "dead",
    };
    tracing::debug!(
        request_id = %f.request_id,
        event_id = %r.subject,
        endpoint = %r.endpoint_id,
        attempt = r.attempt,
        status = ?f.status,
        duration_ms = log.duration_ms,
        outcome,
        "delivery attempt"
    );
    let endpoint = if endpoint_label {
        r.endpoint_id.clone()
    } else {
        String::new()
    };
    let mut labels = vec![
        ("outcome", outcome.to_string()),
        ("status_class", status_class(f.status).to_string()),
    ];
    if endpoint_label {
        labels.push(("endpoint", endpoint.clone()));
    }
    metrics::counter!(m::DELIVERY_ATTEMPTS, &labels).increment(1);
    let seconds = log.duration_ms as f64 / 1000.0;
    if endpoint_label {
        metrics::histogram!(m::DELIVERY_DURATION, "endpoint" => endpoint).record(seconds);
    } else {
        metrics::histogram!(m::DELIVERY_DURATION).record(seconds);
    }
    match &r.next {
        NextStep::Delivered => {
            let e2e = unix_ms().saturating_sub(r.received_at_ms) as f64 / 1000.0;
            metrics::histogram!(m::END_TO_END, "platform" => f.platform.clone()).record(e2e);
        }
        NextStep::Retry { .. } => metrics::counter!(m::RETRIES_SCHEDULED).increment(1),
        NextStep::Gone => metrics::counter!(m::DEAD_LETTERS, "reason" => "gone").increment(1),
        NextStep::Dead { .. } => {
            let reason = if log.status.is_none()
                && log
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("not a public address"))
            {
                "blocked"
            } else {
                "exhausted"
            };
            metrics::counter!(m::DEAD_LETTERS, "reason" => reason).increment(1);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(entry: &str, subject: &str) -> DeliveryRecord {
        DeliveryRecord {
            id: entry.into(),
            kind: DeliveryKind::Event,
            subject: subject.into(),
            endpoints: vec!["ep".into()],
            attempt: 1,
            event_type: "t".into(),
            platform: "whatsapp".into(),
            account_id: "1".into(),
            source: "s".into(),
            received_at_ms: 0,
            occurred_at_ms: None,
            request_id: "r".into(),
            data: "{}".into(),
            identity: String::new(),
            conversation: String::new(),
        }
    }

    #[test]
    fn records_are_grouped_by_the_entry_they_came_in() {
        let read = vec![
            record("1-0", "a"),
            record("1-0", "b"),
            record("2-0", "c"),
            record("3-0", "d"),
            record("3-0", "e"),
        ];
        let entries = entries_of(read);
        let grouped: Vec<Vec<&str>> = entries
            .iter()
            .map(|e| e.iter().map(|r| r.subject.as_str()).collect())
            .collect();
        assert_eq!(grouped, [vec!["a", "b"], vec!["c"], vec!["d", "e"]]);
    }
}
