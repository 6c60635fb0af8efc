//! The management API's bearer key, checked in constant time.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;

/// Proof that the request carried the admin key. Take it as a handler argument.
pub struct Admin;

/// Whether `header` (an `Authorization` value) carries `key` as a bearer token.
pub fn bearer_matches(header: Option<&[u8]>, key: &str) -> bool {
    let Some(token) = header.and_then(|h| h.strip_prefix(b"Bearer ")) else {
        return false;
    };
    !key.is_empty() && bool::from(token.ct_eq(key.as_bytes()))
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Unauthorized));
        };
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        ready(if bearer_matches(header, &state.settings.api.admin_key) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_key_passes() {
        let key = "0123456789abcdef";
        assert!(bearer_matches(Some(b"Bearer 0123456789abcdef"), key));
        assert!(!bearer_matches(Some(b"Bearer 0123456789abcdeX"), key));
        assert!(!bearer_matches(Some(b"Bearer 0123456789abcde"), key));
        assert!(!bearer_matches(Some(b"0123456789abcdef"), key));
        assert!(!bearer_matches(None, key));
        assert!(!bearer_matches(Some(b"Bearer "), ""));
    }
}
