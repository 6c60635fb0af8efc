//! The management API's bearer keys: the admin key from the configuration and tenant keys,
//! both kept only as their SHA-256 (tenant keys in storage, the admin key in memory); a
//! presented key is hashed and compared in constant time.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::ApiError;
use crate::model::audit::ACTOR_ADMIN;

/// Proof that the request carried the admin key. Take it as a handler argument.
pub struct Admin;

/// Who is calling: the admin (sees everything) or a tenant (sees its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Tenant(String),
}

impl Caller {
    /// Whether this caller may see what belongs to `tenant_id`.
    pub fn owns(&self, tenant_id: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Tenant(t) => t == tenant_id,
        }
    }

    pub fn tenant(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Tenant(t) => Some(t),
        }
    }
}

/// Tenant API keys start with this, so a leaked one is recognisable.
pub const TENANT_KEY_PREFIX: &str = "hk_";

/// The stored form of a tenant key.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn bearer(req: &HttpRequest) -> Option<&[u8]> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .map(|v| v.as_bytes())
}

/// The token of an `Authorization: Bearer <token>` value; the scheme's name is matched in any
/// letter case (RFC 9110), and more than one space may follow it.
fn bearer_token(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.starts_with(b" ") {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

/// The caller a request's key names, and the name the audit log gives it: `admin`, or the
/// tenant key's id (never the key).
pub fn identify(req: &HttpRequest) -> LocalBoxFuture<'static, Result<(Caller, String), ApiError>> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Box::pin(async { Err(ApiError::Unauthorized) });
    };
    let header = bearer(req);
    if state.admin_key.matches(header) {
        return Box::pin(async { Ok((Caller::Admin, ACTOR_ADMIN.to_string())) });
    }
    let token = header
        .and_then(bearer_token)
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|t| t.starts_with(TENANT_KEY_PREFIX))
        .map(key_hash);
    Box::pin(async move {
        let hash = token.ok_or(ApiError::Unauthorized)?;
        match state.store.api_key(&hash).await? {
            Some(key) => Ok((Caller::Tenant(key.tenant_id), key.id)),
            None => Err(ApiError::Unauthorized),
        }
    })
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let identified = identify(req);
        Box::pin(async move { identified.await.map(|(caller, _)| caller) })
    }
}

/// The admin key, kept only as its SHA-256.
#[derive(Clone)]
pub struct AdminKey(Option<[u8; 32]>);

impl AdminKey {
    /// An empty key matches nothing.
    pub fn new(key: &str) -> AdminKey {
        AdminKey((!key.is_empty()).then(|| Sha256::digest(key.as_bytes()).into()))
    }

    /// Whether `header` (an `Authorization` value) carries the key as a bearer token. The
    /// digests are compared in constant time.
    pub fn matches(&self, header: Option<&[u8]>) -> bool {
        let (Some(hash), Some(token)) = (&self.0, header.and_then(bearer_token)) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(token).into();
        bool::from(presented.ct_eq(hash))
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(ApiError::Unauthorized));
        };
        ready(if state.admin_key.matches(bearer(req)) {
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
        let key = AdminKey::new("0123456789abcdef");
        assert!(key.matches(Some(b"Bearer 0123456789abcdef")));
        assert!(!key.matches(Some(b"Bearer 0123456789abcdeX")));
        assert!(!key.matches(Some(b"Bearer 0123456789abcde")));
        assert!(!key.matches(Some(b"0123456789abcdef")));
        assert!(!key.matches(None));
        assert!(!AdminKey::new("").matches(Some(b"Bearer ")));
        assert!(!AdminKey::new("").matches(Some(b"Bearer x")));
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        let key = AdminKey::new("0123456789abcdef");
        assert!(key.matches(Some(b"bearer 0123456789abcdef")));
        assert!(key.matches(Some(b"BEARER  0123456789abcdef")));
        assert!(!key.matches(Some(b"Bearer0123456789abcdef")));
        assert!(!key.matches(Some(b"Basic 0123456789abcdef")));
    }

    #[test]
    fn the_admin_key_is_not_kept_in_clear() {
        let key = AdminKey::new("0123456789abcdef");
        let Some(hash) = key.0 else {
            panic!("a key was given");
        };
        assert_ne!(&hash[..16], b"0123456789abcdef");
        assert_eq!(hex::encode(hash), key_hash("0123456789abcdef"));
    }
}
