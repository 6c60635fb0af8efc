//! Limits on the management API, per instance: requests per caller (keyed by a hash of the
//! presented `Authorization` value), and failed authentications per client address. A failed
//! authentication is answered only after `api.auth_failure_delay`, logged with the address and
//! never the key; past the address's budget it is `429` instead of `401`, while a right key
//! from the same address still works (a shared NAT is not locked out by a neighbour).

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::config::ApiSettings;
use crate::metrics as m;

/// Keys remembered before idle ones are forgotten: bounds what a flood of made-up keys or
/// addresses can make hookd hold.
const MAX_TRACKED: usize = 50_000;
/// At most one sweep of idle keys per limiter per second: a flood that keeps the table full
/// must not make every request pay for a sweep.
const SWEEP_EVERY_MS: u64 = 1000;

pub struct ApiLimits {
    per_caller: Option<Limiter<[u8; 32]>>,
    failures: Option<Limiter<IpAddr>>,
    failure_delay: Duration,
}

/// A keyed rate limiter and when its idle keys were last swept.
struct Limiter<K: Hash + Eq + Clone> {
    keyed: DefaultKeyedRateLimiter<K>,
    swept_at_ms: AtomicU64,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(quota: Quota) -> Limiter<K> {
        Limiter {
            keyed: RateLimiter::keyed(quota),
            swept_at_ms: AtomicU64::new(0),
        }
    }

    /// One cell of `key`'s budget, or the whole seconds until the next one.
    fn admit(&self, key: K) -> Result<(), u64> {
        if self.keyed.len() > MAX_TRACKED {
            let now = crate::time::unix_ms();
            let last = self.swept_at_ms.load(Ordering::Relaxed);
            if now.saturating_sub(last) >= SWEEP_EVERY_MS
                && self
                    .swept_at_ms
                    .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                self.keyed.retain_recent();
                self.keyed.shrink_to_fit();
            }
        }
        self.keyed.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

impl ApiLimits {
    pub fn new(api: &ApiSettings) -> ApiLimits {
        let per_caller = NonZeroU32::new(api.requests_per_second).map(|rate| {
            let burst = NonZeroU32::new(api.request_burst).unwrap_or(rate);
            Limiter::new(Quota::per_second(rate).allow_burst(burst))
        });
        let failures = NonZeroU32::new(api.auth_failures_per_minute)
            .map(|n| Limiter::new(Quota::per_minute(n)));
        ApiLimits {
            per_caller,
            failures,
            failure_delay: api.auth_failure_delay,
        }
    }

    /// Takes one request of the caller presenting `authorization`.
    pub fn admit_request(&self, authorization: &[u8]) -> Result<(), ApiError> {
        let Some(limiter) = &self.per_caller else {
            return Ok(());
        };
        limiter
            .admit(Sha256::digest(authorization).into())
            .map_err(|retry_after_secs| ApiError::TooManyRequests {
                message: "too many requests with this API key",
                retry_after_secs,
            })
    }

    /// Counts one failed authentication from `addr`.
    pub fn admit_failure(&self, addr: IpAddr) -> Result<(), ApiError> {
        let Some(limiter) = &self.failures else {
            return Ok(());
        };
        limiter
            .admit(addr)
            .map_err(|retry_after_secs| ApiError::TooManyRequests {
                message: "too many failed authentications from this address",
                retry_after_secs,
            })
    }
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    if let Some(auth) = req.headers().get(actix_web::http::header::AUTHORIZATION)
        && let Err(e) = state.api_limits.admit_request(auth.as_bytes())
    {
        metrics::counter!(m::API_RATE_LIMITED, "reason" => "caller").increment(1);
        return Ok(req.error_response(e).map_into_boxed_body());
    }
    let addr =
        super::client_addr::client_addr(req.request(), &state.settings.server.trusted_proxies);
    let path = req.path().to_string();
    let res = next.call(req).await?.map_into_boxed_body();
    if res.status() != StatusCode::UNAUTHORIZED {
        return Ok(res);
    }
    metrics::counter!(m::API_AUTH_FAILURES).increment(1);
    tracing::info!(
        client = ?addr,
        %path,
        "management API request with a missing or wrong key"
    );
    actix_web::rt::time::sleep(state.api_limits.failure_delay).await;
    match addr.map(|a| state.api_limits.admit_failure(a)) {
        Some(Err(e)) => {
            metrics::counter!(m::API_RATE_LIMITED, "reason" => "auth_failures").increment(1);
            let (req, _) = res.into_parts();
            let res = actix_web::ResponseError::error_response(&e);
            Ok(ServiceResponse::new(req, res))
        }
        _ => Ok(res),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(per_second: u32, burst: u32, failures: u32) -> ApiSettings {
        ApiSettings {
            admin_key: String::new(),
            max_page_size: 100,
            listen: None,
            requests_per_second: per_second,
            request_burst: burst,
            auth_failures_per_minute: failures,
            auth_failure_delay: Duration::ZERO,
        }
    }

    #[test]
    fn a_caller_gets_its_burst_then_is_told_when_to_come_back() {
        let limits = ApiLimits::new(&settings(1, 3, 0));
        for _ in 0..3 {
            assert!(limits.admit_request(b"Bearer a").is_ok());
        }
        match limits.admit_request(b"Bearer a") {
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(
            limits.admit_request(b"Bearer b").is_ok(),
            "another caller has its own budget"
        );
    }

    #[test]
    fn failed_authentications_are_counted_per_address() {
        let limits = ApiLimits::new(&settings(0, 0, 2));
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        assert!(limits.admit_failure(a).is_ok());
        assert!(limits.admit_failure(a).is_ok());
        assert!(limits.admit_failure(a).is_err());
        assert!(limits.admit_failure(b).is_ok());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = ApiLimits::new(&settings(0, 0, 0));
        for _ in 0..10_000 {
            assert!(limits.admit_request(b"Bearer a").is_ok());
            assert!(
                limits
                    .admit_failure("192.0.2.1".parse().expect("ip"))
                    .is_ok()
            );
        }
    }
}
