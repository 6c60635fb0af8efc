//! Errors of the management API and health endpoints, and how they look on the wire:
//! `{"error": {"code": "...", "message": "..."}}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::graph::GraphError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or wrong API key (send `Authorization: Bearer <key>`)")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    /// A path or query parameter that is malformed or out of range.
    #[error("{0}: {1}")]
    BadParameter(&'static str, String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(#[from] crate::delivery::endpoint::Invalid),
    #[error(transparent)]
    Store(StoreError),
    /// A call to Meta's Graph API failed: Meta's error as it sent it.
    #[error(transparent)]
    Graph(crate::graph::GraphError),
    /// What the request needs is not configured (the setting is named).
    #[error("{0}")]
    NotConfigured(String),
    /// Over a management API limit; may try again after this many seconds.
    #[error("{message}; try again in {retry_after_secs}s")]
    TooManyRequests {
        message: &'static str,
        retry_after_secs: u64,
    },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::InvalidInput { parameter, problem } => {
                ApiError::BadParameter(parameter, problem)
            }
            other => ApiError::Store(other),
        }
    }
}

impl ApiError {
    /// A 422 about `field`.
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> ApiError {
        ApiError::Invalid(crate::delivery::endpoint::Invalid {
            field: field.into(),
            problem: problem.into(),
        })
    }

    /// What the audit log says of a refusal: the code and the field or thing it concerns,
    /// never a value from the request (a message may quote one).
    pub fn audit_summary(&self) -> String {
        let code = self.code();
        match self {
            ApiError::Invalid(i) => format!("{code}: {}", i.field),
            ApiError::BadParameter(name, _) => format!("{code}: {name}"),
            ApiError::NotFound(what) | ApiError::Forbidden(what) => format!("{code}: {what}"),
            ApiError::Conflict(message) => format!("{code}: {message}"),
            ApiError::Store(e) => format!("{code}: {e}"),
            ApiError::Graph(e) => match e.failure() {
                Some(f) => format!("{code}: code {} ({})", f.code, f.kind),
                None => code.to_string(),
            },
            _ => code.to_string(),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadRequest(_) | ApiError::BadParameter(..) => "bad_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Conflict(_) => "conflict",
            ApiError::Invalid(_) => "invalid",
            ApiError::Store(_) => "storage_unavailable",
            ApiError::Graph(GraphError::Refused(_)) => "graph_refused",
            ApiError::Graph(GraphError::RateLimited { .. }) => "graph_rate_limited",
            ApiError::Graph(_) => "graph_unreachable",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::TooManyRequests { .. } => "rate_limited",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) | ApiError::BadParameter(..) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Graph(GraphError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Graph(_) => StatusCode::BAD_GATEWAY,
            ApiError::NotConfigured(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            res.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if matches!(self, ApiError::Store(_)) {
            res.insert_header(("Retry-After", "5"));
        }
        if let ApiError::TooManyRequests {
            retry_after_secs, ..
        } = self
        {
            res.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        if let ApiError::Graph(GraphError::RateLimited {
            retry_after_secs, ..
        }) = self
        {
            res.insert_header(("Retry-After", retry_after_secs.to_string()));
        }
        let mut error = json!({"code": self.code(), "message": self.to_string()});
        if let ApiError::Invalid(i) = self {
            error["field"] = json!(i.field);
        }
        if let ApiError::BadParameter(name, _) = self {
            error["parameter"] = json!(name);
        }
        if let ApiError::Graph(e) = self
            && let Some(f) = e.failure()
        {
            error["graph"] = json!(f);
        }
        res.json(json!({ "error": error }))
    }
}
