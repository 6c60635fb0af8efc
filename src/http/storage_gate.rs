//! Ingress's view of whether storage is reachable. Once a journal write fails because storage
//! is unreachable, webhooks are answered 503 at once (Meta retries them) instead of each
//! waiting for its own failed write, until a probe of the store succeeds.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often a down store is probed.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);

/// Shared by every HTTP worker.
#[derive(Debug, Default)]
pub struct StorageGate {
    down: AtomicBool,
}

impl StorageGate {
    /// Whether ingress should refuse without trying.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// Marks storage down and, unless a probe already runs, starts one: `probe` is called
    /// every `every` until it succeeds, which opens the gate again.
    pub fn mark_down<P, F>(self: &Arc<Self>, every: Duration, mut probe: P)
    where
        P: FnMut() -> F + 'static,
        F: Future<Output = bool> + 'static,
    {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::warn!("storage unreachable: answering webhooks 503 until it answers again");
        let gate = Arc::clone(self);
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(every).await;
                if probe().await {
                    gate.down.store(false, Ordering::Release);
                    tracing::info!("storage reachable again: accepting webhooks");
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[actix_web::test]
    async fn the_gate_stays_shut_until_a_probe_succeeds() {
        let gate = Arc::new(StorageGate::default());
        assert!(!gate.is_down());
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        gate.mark_down(Duration::from_millis(5), move || {
            c.set(c.get() + 1);
            let ok = c.get() >= 3;
            async move { ok }
        });
        assert!(gate.is_down());
        // A second failure while down starts no second probe.
        gate.mark_down(Duration::from_millis(5), || async { true });
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while gate.is_down() {
            assert!(std::time::Instant::now() < deadline, "never reopened");
            actix_web::rt::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(calls.get(), 3);
    }
}
