//! The handshakes this instance answered lately: the subscription check looks here to tell
//! whether the callback URL Meta has on record reaches this hookd, and with which token.

use std::collections::VecDeque;
use std::sync::Mutex;

/// One `GET /webhooks/{source}` handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    pub source: String,
    pub at_ms: u64,
    /// The verify token matched (and the mode was `subscribe`).
    pub accepted: bool,
}

/// A bounded record: anyone can make hookd log a handshake, so it keeps only the newest.
#[derive(Debug, Default)]
pub struct HandshakeLog {
    seen: Mutex<VecDeque<Handshake>>,
}

const KEEP: usize = 64;

impl HandshakeLog {
    pub fn record(&self, handshake: Handshake) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() == KEEP {
            seen.pop_front();
        }
        seen.push_back(handshake);
    }

    /// The handshakes answered at or after `at_ms`, oldest first.
    pub fn since(&self, at_ms: u64) -> Vec<Handshake> {
        self.seen
            .lock()
            .map(|seen| seen.iter().filter(|h| h.at_ms >= at_ms).cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Handshake {
        Handshake {
            source: "s".into(),
            at_ms: ms,
            accepted: true,
        }
    }

    #[test]
    fn only_the_newest_handshakes_are_kept_and_read_by_time() {
        let log = HandshakeLog::default();
        for ms in 0..(KEEP as u64 + 10) {
            log.record(at(ms));
        }
        assert_eq!(log.since(0).len(), KEEP);
        assert_eq!(log.since(70), vec![at(70), at(71), at(72), at(73)]);
    }
}
