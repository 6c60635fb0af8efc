//! Records of webhook requests refused (a bad signature, a missing client certificate), kept for
//! operators.
//!
//! Anyone can send such a request, so everything about keeping them is bounded: each field of
//! a record (a record is at most [`Rejection::MAX_BYTES`]), the list (by count and by bytes), how
//! many records one peer may cause per minute ([`PeerBudget`], whose table is bounded too), and
//! how many records are written at once. Past any bound a refusal is only counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use tokio::sync::Semaphore;

use super::AppState;
use crate::store::{Backend, Rejection};

/// The most a record's header-derived fields may hold, each.
pub const HEADER_MAX_BYTES: usize = 256;
/// The most a record's body prefix may hold (`ingress.rejected_body_bytes` is capped to it).
pub const BODY_PREFIX_MAX_BYTES: usize = 1024;
/// How many rejection records may be written at once.
pub const REJECTION_WRITERS: usize = 64;
/// Peers whose rejections are tracked at once; past it, a new peer's refusals are counted
/// only until an old peer's minute is over.
pub const PEERS_TRACKED: usize = 4096;
const PEER_WINDOW: Duration = Duration::from_secs(60);

// Source, request id and signature, the peer address (at most 45 characters), the body
// prefix, and room for field names and numbers fit one record's bound.
const _: () =
    assert!(3 * HEADER_MAX_BYTES + 45 + BODY_PREFIX_MAX_BYTES + 200 <= Rejection::MAX_BYTES);

/// `text` cut to at most `max` bytes, at a character boundary.
pub fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The first bytes of a body as text, never more than `max` bytes once converted (invalid
/// UTF-8 becomes U+FFFD, three bytes for one).
pub fn body_prefix(body: &[u8], max: usize) -> String {
    let max = max.min(BODY_PREFIX_MAX_BYTES);
    let text = String::from_utf8_lossy(&body[..body.len().min(max)]);
    clip(&text, max).to_string()
}

/// Per peer, how many records it caused in its current minute. Bounded: at most
/// [`PEERS_TRACKED`] peers.
#[derive(Debug)]
pub struct PeerBudget {
    per_minute: u32,
    capacity: usize,
    peers: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl PeerBudget {
    pub fn new(per_minute: u32, capacity: usize) -> PeerBudget {
        PeerBudget {
            per_minute,
            capacity,
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `peer` may cause one more record now; counts it when so.
    pub fn admit(&self, peer: IpAddr, now: Instant) -> bool {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if !peers.contains_key(&peer) && peers.len() >= self.capacity {
            peers.retain(|_, (start, _)| now.saturating_duration_since(*start) < PEER_WINDOW);
            if peers.len() >= self.capacity {
                return false;
            }
        }
        let (start, count) = peers.entry(peer).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= PEER_WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_minute {
            return false;
        }
        *count += 1;
        true
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// What bounds the writing of records; shared by every HTTP worker.
pub struct RejectionLimits {
    writers: Arc<Semaphore>,
    peers: PeerBudget,
}

impl RejectionLimits {
    pub fn new(per_peer_per_minute: u32) -> RejectionLimits {
        RejectionLimits {
            writers: Arc::new(Semaphore::new(REJECTION_WRITERS)),
            peers: PeerBudget::new(per_peer_per_minute, PEERS_TRACKED),
        }
    }
}

/// Keeps a bounded record of a refused request without making the 401 wait for storage.
pub fn record(
    state: &AppState,
    source: &str,
    request_id: &str,
    req: &HttpRequest,
    body: &[u8],
    reason: &'static str,
) {
    let peer = super::client_addr::client_addr(req, &state.settings.server.trusted_proxies);
    let unspecified = IpAddr::from([0, 0, 0, 0]);
    if !state
        .rejections
        .peers
        .admit(peer.unwrap_or(unspecified), Instant::now())
    {
        return;
    }
    let Ok(permit) = state.rejections.writers.clone().try_acquire_owned() else {
        return;
    };
    let signature_header = req
        .headers()
        .get("x-hub-signature-256")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let rejection = Rejection {
        source: clip(source, HEADER_MAX_BYTES).to_string(),
        reason: reason.to_string(),
        received_at_ms: crate::time::unix_ms(),
        request_id: clip(request_id, HEADER_MAX_BYTES).to_string(),
        remote_addr: peer.map(|p| p.to_string()).unwrap_or_default(),
        signature: clip(&signature_header, HEADER_MAX_BYTES).to_string(),
        body_len: body.len(),
        body_prefix: body_prefix(body, state.settings.ingress.rejected_body_bytes),
    };
    let store: Arc<dyn Backend> = state.store.clone();
    actix_web::rt::spawn(async move {
        if let Err(e) = store.record_rejection(&rejection).await {
            tracing::warn!(error = %e, "could not record a rejected request");
        }
        drop(permit);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_budget_per_minute_and_no_more() {
        let budget = PeerBudget::new(3, 10);
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!((0..3).all(|_| budget.admit(peer, t0)));
        assert!(!budget.admit(peer, t0 + Duration::from_secs(59)));
        assert!(budget.admit(peer, t0 + PEER_WINDOW));
    }

    #[test]
    fn the_peer_table_never_grows_past_its_capacity() {
        let budget = PeerBudget::new(1, 100);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            budget.admit(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert_eq!(budget.tracked(), 100);
        // A new peer is refused while the table is full of live windows...
        assert!(!budget.admit("192.0.2.1".parse().unwrap(), t0));
        // ...and admitted once old windows are over.
        assert!(budget.admit("192.0.2.1".parse().unwrap(), t0 + PEER_WINDOW));
        assert!(budget.tracked() <= 100);
    }

    #[test]
    fn a_body_prefix_stays_within_its_bytes_even_as_replacement_characters() {
        let invalid = vec![0xffu8; 5000];
        let p = body_prefix(&invalid, 1024);
        assert!(p.len() <= 1024 && !p.is_empty(), "{}", p.len());
        assert!(body_prefix(&invalid, 1_000_000).len() <= BODY_PREFIX_MAX_BYTES);
        assert_eq!(body_prefix(b"{\"a\":1}", 1024), "{\"a\":1}");
    }

    #[test]
    fn clip_cuts_at_a_character_boundary() {
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip(&"a".repeat(60_000), HEADER_MAX_BYTES).len(), 256);
    }
}
