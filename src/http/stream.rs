//! `GET /api/v1/stream`: new events and delivery outcomes as server-sent events, read from
//! storage (so a client sees what every instance stored), for as long as the client reads.
//!
//! Each client has a task that polls storage and a bounded buffer of frames. A client that
//! does not read fast enough fills its buffer and is dropped: hookd never waits for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::metrics as m;
use crate::model::AttemptEntry;
use crate::store::ids::{EntryId, listing_order};

/// Where an event or attempt stands in listings (see [`listing_order`]).
type Listed = (EntryId, u64, usize);
use crate::store::{Backend, EventQuery, StoreError, StoredEvent};

/// How often a client's task reads storage.
const POLL: Duration = Duration::from_millis(500);
/// A comment sent when nothing else was, so proxies keep the connection open.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Frames a client may have unread before it is dropped.
const BUFFER: usize = 256;
/// Events, and attempts per endpoint, read per poll; more than this since the last poll is
/// reported as a gap (`event: lagged`).
const READ: usize = 100;
/// Endpoints whose attempt logs one client follows; past it, name one with `endpoint_id`.
const ENDPOINTS_MAX: usize = 50;
/// Streams one instance serves at once.
pub const CLIENTS_MAX: usize = 100;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    #[param(pattern = "^(whatsapp|messenger|page|instagram|other)$")]
    platform: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    account_id: Option<String>,
    endpoint_id: Option<String>,
}

/// One server-sent event.
pub fn frame(event: &str, id: Option<&str>, data: &str) -> Bytes {
    let mut out = format!("event: {event}\n");
    if let Some(id) = id {
        out.push_str(&format!("id: {id}\n"));
    }
    // A data line may not hold a newline; JSON from serde has none, but a split keeps it valid.
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// What one client follows, and how far it has read.
struct Feed {
    query: EventQuery,
    /// Only events routed to this endpoint, when named.
    endpoint: Option<String>,
    /// The endpoints whose attempts it follows, with the newest attempt already sent.
    attempts: HashMap<String, Option<Listed>>,
    last_event: Option<Listed>,
}

impl Feed {
    fn wanted(&self, e: &StoredEvent) -> bool {
        self.endpoint
            .as_ref()
            .is_none_or(|ep| e.endpoints.contains(ep))
    }

    fn attempt_wanted(&self, a: &AttemptEntry) -> bool {
        let q = &self.query;
        q.event_type.as_ref().is_none_or(|t| &a.log.event_type == t)
            && q.platform
                .as_ref()
                .is_none_or(|p| a.log.event_type.starts_with(&format!("{p}.")))
    }

    /// Where the client starts: after what is stored now.
    async fn start(&mut self, store: &dyn Backend) -> Result<(), StoreError> {
        let newest = store
            .list_events(&EventQuery {
                limit: 1,
                ..self.query.clone()
            })
            .await?;
        self.last_event = newest.items.first().and_then(|e| listing_order(&e.id));
        let endpoints: Vec<String> = self.attempts.keys().cloned().collect();
        for ep in endpoints {
            let page = store.list_attempts(&ep, None, 1).await?;
            let last = page.items.first().and_then(|a| listing_order(&a.id));
            self.attempts.insert(ep, last);
        }
        Ok(())
    }

    /// The frames of what was stored since the last poll, oldest first.
    async fn poll(&mut self, store: &dyn Backend) -> Result<Vec<Bytes>, StoreError> {
        let mut frames = Vec::new();
        let page = store
            .list_events(&EventQuery {
                limit: READ,
                ..self.query.clone()
            })
            .await?;
        let newer: Vec<StoredEvent> = page
            .items
            .into_iter()
            .take_while(|e| listing_order(&e.id) > self.last_event)
            .collect();
        if newer.len() == READ {
            frames.push(frame("lagged", None, r#"{"what":"events"}"#));
        }
        if let Some(first) = newer.first() {
            self.last_event = listing_order(&first.id);
        }
        for e in newer.iter().rev().filter(|e| self.wanted(e)) {
            if let Ok(json) = serde_json::to_string(e) {
                frames.push(frame("event", Some(&e.id), &json));
            }
        }
        let endpoints: Vec<(String, Option<Listed>)> =
            self.attempts.iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (ep, last) in endpoints {
            let page = store.list_attempts(&ep, None, READ).await?;
            let newer: Vec<AttemptEntry> = page
                .items
                .into_iter()
                .take_while(|a| listing_order(&a.id) > last)
                .collect();
            if newer.len() == READ {
                frames.push(frame("lagged", None, r#"{"what":"deliveries"}"#));
            }
            if let Some(first) = newer.first() {
                self.attempts.insert(ep, listing_order(&first.id));
            }
            for a in newer.iter().rev().filter(|a| self.attempt_wanted(a)) {
                if let Ok(json) = serde_json::to_string(a) {
                    frames.push(frame("delivery", Some(&a.id), &json));
                }
            }
        }
        Ok(frames)
    }
}

/// Counts the streams being served; one leaves when its guard is dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Option<Slot> {
        let taken = count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < CLIENTS_MAX).then_some(n + 1)
            })
            .is_ok();
        taken.then(|| {
            metrics::gauge!(m::STREAM_CLIENTS).increment(1.0);
            Slot(count.clone())
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(m::STREAM_CLIENTS).decrement(1.0);
    }
}

#[utoipa::path(get, path = "/api/v1/stream", operation_id = "stream", tag = "events", params(StreamParams), responses((status = 200, description = "Server-sent events: `event`, `delivery`, `lagged`, `error`", body = String, content_type = "text/event-stream"), crate::http::openapi::Errors))]
pub async fn stream(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    super::api::check_platform(p.platform.as_deref())?;
    let mine = super::api::visible_endpoints(&state, &caller).await?;
    let followed: Vec<String> = match &p.endpoint_id {
        Some(ep) if mine.contains(ep) => vec![ep.clone()],
        Some(_) => return Err(ApiError::NotFound("endpoint")),
        None if mine.len() > ENDPOINTS_MAX => {
            return Err(ApiError::BadParameter(
                "endpoint_id",
                format!("more than {ENDPOINTS_MAX} endpoints: name one"),
            ));
        }
        None => mine,
    };
    let slot = Slot::take(&state.stream_clients).ok_or(ApiError::TooManyRequests {
        message: "this instance serves as many streams as it may",
        retry_after_secs: 5,
    })?;
    let mut feed = Feed {
        query: EventQuery {
            platform: p.platform,
            event_type: p.event_type,
            account_id: p.account_id,
            tenant_id: caller.tenant().map(str::to_string),
            ..EventQuery::default()
        },
        endpoint: p.endpoint_id,
        attempts: followed.into_iter().map(|ep| (ep, None)).collect(),
        last_event: None,
    };
    let store = state.store.clone();
    feed.start(store.as_ref()).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(BUFFER);
    let closing = state.closing.subscribe();
    actix_web::rt::spawn(follow(feed, store, tx, slot, closing));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|frame| (Ok::<_, actix_web::Error>(frame), rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        // Compression would hold frames back until a block fills.
        .insert_header(("Content-Encoding", "identity"))
        .streaming(body))
}

/// Polls for the client until it goes away, falls behind or hookd stops.
async fn follow(
    mut feed: Feed,
    store: Arc<dyn Backend>,
    tx: mpsc::Sender<Bytes>,
    _slot: Slot,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    // Sent at once, so the client knows the stream is open.
    if tx
        .try_send(Bytes::from_static(b": hookd stream\n\n"))
        .is_err()
    {
        return;
    }
    let mut quiet = Duration::ZERO;
    loop {
        tokio::select! {
            _ = actix_web::rt::time::sleep(POLL) => {}
            // hookd is stopping (or the sender is gone): the stream ends, the client reconnects.
            _ = closing.wait_for(|c| *c) => return,
        }
        if tx.is_closed() {
            return;
        }
        let frames = match feed.poll(store.as_ref()).await {
            Ok(frames) => frames,
            Err(e) => vec![frame(
                "error",
                None,
                &serde_json::json!({"error": e.to_string()}).to_string(),
            )],
        };
        quiet = if frames.is_empty() {
            quiet + POLL
        } else {
            Duration::ZERO
        };
        let keepalive = (quiet >= KEEPALIVE).then(|| Bytes::from_static(b": keepalive\n\n"));
        if keepalive.is_some() {
            quiet = Duration::ZERO;
        }
        match send_all(&tx, frames.into_iter().chain(keepalive)) {
            Sent::All => {}
            Sent::Behind => {
                metrics::counter!(m::STREAM_DROPPED).increment(1);
                tracing::info!("a stream client fell behind and was dropped");
                return;
            }
            Sent::Gone => return,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Sent {
    All,
    /// The client's buffer is full: it does not read fast enough.
    Behind,
    /// The client went away.
    Gone,
}

/// Hands `frames` to the client's buffer without ever waiting for it.
fn send_all(tx: &mpsc::Sender<Bytes>, frames: impl IntoIterator<Item = Bytes>) -> Sent {
    for f in frames {
        match tx.try_send(f) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Sent::Behind,
            Err(mpsc::error::TrySendError::Closed(_)) => return Sent::Gone,
        }
    }
    Sent::All
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_server_sent_events() {
        let f = frame("event", Some("1-0"), r#"{"a":1}"#);
        assert_eq!(&f[..], b"event: event\nid: 1-0\ndata: {\"a\":1}\n\n");
        let multi = frame("x", None, "a\nb");
        assert_eq!(&multi[..], b"event: x\ndata: a\ndata: b\n\n");
    }

    #[test]
    fn attempt_ids_order_by_entry_then_position() {
        assert!(listing_order("5-0.2") > listing_order("5-0.1"));
        assert!(listing_order("6-0") > listing_order("5-0.9"));
        assert!(listing_order("5-0.1") > None);
        assert_eq!(listing_order("junk"), None);
        assert!(
            listing_order("5-0~2") > listing_order("5-0~1"),
            "partitions past 0"
        );
        assert!(listing_order("6-0") > listing_order("5-0.9~3"));
    }

    #[test]
    fn a_client_whose_buffer_is_full_is_behind_and_one_gone_is_gone() {
        let (tx, mut rx) = mpsc::channel(2);
        let f = || frame("event", None, "{}");
        assert_eq!(send_all(&tx, [f(), f()]), Sent::All);
        assert_eq!(
            send_all(&tx, [f()]),
            Sent::Behind,
            "never waits for the reader"
        );
        assert!(rx.try_recv().is_ok());
        assert_eq!(send_all(&tx, [f()]), Sent::All);
        drop(rx);
        assert_eq!(send_all(&tx, [f()]), Sent::Gone);
    }

    #[test]
    fn streams_are_counted_and_capped() {
        let count = Arc::new(AtomicUsize::new(0));
        let slots: Vec<Slot> = (0..CLIENTS_MAX)
            .filter_map(|_| Slot::take(&count))
            .collect();
        assert_eq!(slots.len(), CLIENTS_MAX);
        assert!(Slot::take(&count).is_none());
        drop(slots);
        assert_eq!(count.load(Ordering::Acquire), 0);
        assert!(Slot::take(&count).is_some());
    }
}
