//! `Idempotency-Key` on the create routes, as Stripe and Svix clients expect: a POST retried
//! with the same key (by the same caller, on the same route) is not done twice; the first
//! answer is given again, with `Idempotent-Replayed: true`. A retry while the first request
//! still runs is `409`; a first request that failed frees the key for the next try.

use std::time::Duration;

use actix_web::body::{MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;

/// How long a key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest key taken.
const MAX_KEY_LEN: usize = 255;

/// The stored name of a key: the caller (a hash of its credentials), the route and the key,
/// hashed, so one caller's key never answers another's request.
pub fn scoped_key(authorization: &[u8], path: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(Sha256::digest(authorization));
    h.update(path.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string));
    let (Some(key), true) = (key, req.method() == Method::POST) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let key = match key {
        Ok(k) if !k.is_empty() && k.len() <= MAX_KEY_LEN => k,
        _ => {
            let err = ApiError::BadRequest(format!(
                "Idempotency-Key: 1 to {MAX_KEY_LEN} visible ASCII characters"
            ));
            return Ok(req.error_response(err).map_into_boxed_body());
        }
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.as_bytes().to_vec())
        .unwrap_or_default();
    let scoped = scoped_key(&auth, req.path(), &key);
    match state.store.claim_idempotency(&scoped, KEY_TTL).await {
        Err(e) => Ok(req.error_response(ApiError::from(e)).map_into_boxed_body()),
        Ok(crate::store::IdempotencyClaim::InProgress) => {
            let err = ApiError::Conflict(
                "a request with this Idempotency-Key is still running; retry later".into(),
            );
            Ok(req.error_response(err).map_into_boxed_body())
        }
        Ok(crate::store::IdempotencyClaim::Done { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let res = HttpResponse::build(status)
                .content_type("application/json")
                .insert_header(("idempotent-replayed", "true"))
                .body(body);
            Ok(req.into_response(res))
        }
        Ok(crate::store::IdempotencyClaim::Fresh) => {
            let res = next.call(req).await;
            let res = match res {
                Ok(r) => r,
                Err(e) => {
                    let _ = state.store.release_idempotency(&scoped).await;
                    return Err(e);
                }
            };
            let status = res.status();
            if !status.is_success() {
                // Not done: the next try with this key goes ahead.
                let _ = state.store.release_idempotency(&scoped).await;
                return Ok(res.map_into_boxed_body());
            }
            let (req, res) = res.into_parts();
            let (head, body) = res.into_parts();
            let bytes = to_bytes(body).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Err(e) = state
                .store
                .settle_idempotency(&scoped, status.as_u16(), &text, KEY_TTL)
                .await
            {
                tracing::warn!(error = %e, "could not keep an idempotent answer; a retry may repeat it");
                let _ = state.store.release_idempotency(&scoped).await;
            }
            let res = head.set_body(bytes).map_into_boxed_body();
            Ok(ServiceResponse::new(req, res))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_scoped_to_its_caller_and_route() {
        let a = scoped_key(b"Bearer one", "/api/v1/tenants", "k1");
        assert_eq!(a, scoped_key(b"Bearer one", "/api/v1/tenants", "k1"));
        assert_ne!(a, scoped_key(b"Bearer two", "/api/v1/tenants", "k1"));
        assert_ne!(a, scoped_key(b"Bearer one", "/api/v1/endpoints", "k1"));
        assert_ne!(a, scoped_key(b"Bearer one", "/api/v1/tenants", "k2"));
    }
}
