//! `GET /webhooks/{source}` (Meta's handshake) and `POST /webhooks/{source}` (events).
//!
//! The POST path verifies the signature over the exact received bytes, journals the request
//! through the `IngressWriter`, and answers 200 only once Redis has the entry.

use std::time::Instant;

use actix::prelude::SendError;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use super::storage_gate::PROBE_EVERY;
use super::tls::{ClientCertRefusal, ClientIdentity};
use super::{AppState, JournalWriter, rejections};
use crate::actors::messages::{Journal, JournalError};
use crate::graph::handshakes::Handshake as SeenHandshake;
use crate::meta::signature::{self, SignatureError};
use crate::metrics as m;
use crate::store::JournalEntry;

/// A configured Meta app, ready for the hot path.
pub struct Source {
    pub secrets: Vec<Vec<u8>>,
    pub verify_token: String,
    /// The common name a trusted client certificate must have; `None`: none is required.
    pub client_cert_name: Option<String>,
}

/// Outcomes of a webhook POST; each is a label value of `hookd_ingress_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected(signature::SignatureError),
    ClientCert(ClientCertRefusal),
    TooLarge,
    UnknownSource,
    Overloaded,
    Unavailable,
    BadBody,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected(e) => e.reason(),
            Outcome::ClientCert(r) => r.reason(),
            Outcome::TooLarge => "too_large",
            Outcome::UnknownSource => "unknown_source",
            Outcome::Overloaded => "overloaded",
            Outcome::Unavailable => "unavailable",
            Outcome::BadBody => "bad_body",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Outcome::Accepted => StatusCode::OK,
            Outcome::Rejected(_) => StatusCode::UNAUTHORIZED,
            Outcome::ClientCert(_) => StatusCode::FORBIDDEN,
            Outcome::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Outcome::UnknownSource => StatusCode::NOT_FOUND,
            Outcome::Overloaded | Outcome::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Outcome::BadBody => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Deserialize)]
pub struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

#[utoipa::path(get, path = "/webhooks/{source}", operation_id = "handshake", tag = "webhooks", params(("source" = String, Path, description = "A configured source"), ("hub.mode" = String, Query), ("hub.verify_token" = String, Query), ("hub.challenge" = String, Query)), responses((status = 200, description = "`hub.challenge`", body = String, content_type = "text/plain"), (status = 400, description = "A `hub.*` parameter is missing", body = String, content_type = "text/plain"), (status = 403, description = "Wrong verify token or mode", body = String, content_type = "text/plain"), (status = 404, description = "Unknown source", body = String, content_type = "text/plain")), security(()))]
pub async fn handshake(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<Handshake>,
) -> HttpResponse {
    let Some((name, source)) = state.source(path.as_str()) else {
        return plain(StatusCode::NOT_FOUND, "unknown source");
    };
    let q = query.into_inner();
    let (Some(mode), Some(token), Some(challenge)) = (q.mode, q.verify_token, q.challenge) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "expected hub.mode, hub.verify_token and hub.challenge",
        );
    };
    let token_ok: bool = token
        .as_bytes()
        .ct_eq(source.verify_token.as_bytes())
        .into();
    let accepted = mode == "subscribe" && token_ok;
    state.handshakes.record(SeenHandshake {
        source: name.to_string(),
        at_ms: crate::time::unix_ms(),
        accepted,
    });
    if accepted {
        // The challenge is the caller's text echoed back: never let a browser sniff it as HTML.
        HttpResponse::Ok()
            .content_type("text/plain")
            .insert_header(("X-Content-Type-Options", "nosniff"))
            .body(challenge)
    } else {
        tracing::warn!(source = %path, "webhook handshake refused: wrong verify token or mode");
        plain(StatusCode::FORBIDDEN, "verify token does not match")
    }
}

#[utoipa::path(post, path = "/webhooks/{source}", operation_id = "receive", tag = "webhooks", params(("source" = String, Path, description = "A configured source"), ("X-Hub-Signature-256" = String, Header, description = "`sha256=<hex HMAC-SHA256(app secret, body)>`")), request_body(content = Object, content_type = "application/json", description = "Meta's webhook body, signed"), responses((status = 200, description = "`EVENT_RECEIVED`, journaled (`X-Journal-Id`)", body = String, content_type = "text/plain"), (status = 400, description = "The body could not be read", body = String, content_type = "text/plain"), (status = 401, description = "Missing, malformed or wrong signature", body = String, content_type = "text/plain"), (status = 403, description = "A required client certificate is missing or wrong", body = String, content_type = "text/plain"), (status = 404, description = "Unknown source", body = String, content_type = "text/plain"), (status = 413, description = "Body over `server.max_body_bytes`", body = String, content_type = "text/plain"), (status = 503, description = "Journal full or storage unreachable (`Retry-After`)", body = String, content_type = "text/plain")), security(()))]
pub async fn receive(
    state: web::Data<AppState>,
    writer: web::Data<JournalWriter>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let request_id = request_id(&req);
    let requested = path.into_inner();
    let found = state.source(&requested);
    // The configured name from here on: for the journal, the logs and the labels.
    let source_name = found.map_or(requested, |(name, _)| name.to_string());
    let (outcome, detail) = match found {
        None => (Outcome::UnknownSource, "unknown source".to_string()),
        Some((_, source)) => {
            accept(
                &state,
                &writer,
                source,
                &source_name,
                &request_id,
                &req,
                payload,
            )
            .await
        }
    };
    // Only configured names become labels, so the label set stays bounded.
    let source_label = if outcome == Outcome::UnknownSource {
        "unknown".to_string()
    } else {
        source_name.clone()
    };
    metrics::counter!(m::INGRESS_REQUESTS, "source" => source_label, "outcome" => outcome.label())
        .increment(1);
    metrics::histogram!(m::INGRESS_DURATION, "outcome" => outcome.label())
        .record(started.elapsed().as_secs_f64());
    if outcome != Outcome::Accepted {
        tracing::debug!(source = %source_name, %request_id, outcome = outcome.label(), %detail, "webhook refused");
    }

    let mut res = HttpResponse::build(outcome.status());
    res.insert_header(("X-Request-Id", request_id));
    if outcome.status() == StatusCode::SERVICE_UNAVAILABLE {
        res.insert_header((
            "Retry-After",
            state.settings.ingress.retry_after_secs.to_string(),
        ));
    }
    if outcome == Outcome::Accepted {
        res.insert_header(("X-Journal-Id", detail));
        return res.content_type("text/plain").body("EVENT_RECEIVED");
    }
    res.content_type("text/plain").body(detail)
}

async fn accept(
    state: &AppState,
    writer: &JournalWriter,
    source: &Source,
    source_name: &str,
    request_id: &str,
    req: &HttpRequest,
    payload: web::Payload,
) -> (Outcome, String) {
    // Decided before the body is read: a client without the right certificate sends nothing
    // hookd keeps but a bounded rejection record.
    if let Some(name) = &source.client_cert_name {
        let identity = req.conn_data::<ClientIdentity>();
        let judged = identity.map_or(Err(ClientCertRefusal::Missing), |i| i.admits(name));
        if let Err(refusal) = judged {
            rejections::record(state, source_name, request_id, req, &[], refusal.reason());
            let detail = match identity {
                Some(ClientIdentity::Untrusted(why)) => format!("client certificate: {why}"),
                _ => format!("a client certificate named {name} is required"),
            };
            return (Outcome::ClientCert(refusal), detail);
        }
    }
    let limit = state.settings.server.max_body_bytes;
    let body = match read_body(req, payload, limit).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            return (Outcome::TooLarge, format!("body exceeds {limit} bytes"));
        }
        Err(BodyError::Broken(e)) => {
            return (Outcome::BadBody, format!("body could not be read: {e}"));
        }
    };
    let mut headers = req.headers().get_all("x-hub-signature-256");
    let header = headers.next().map(|v| v.as_bytes());
    // Two signatures leave it open which one an intermediary or a receiver would check.
    let verified = match headers.next() {
        Some(_) => Err(SignatureError::Malformed),
        None => signature::verify(header, &body, &source.secrets),
    };
    if let Err(e) = verified {
        rejections::record(state, source_name, request_id, req, &body, e.reason());
        return (Outcome::Rejected(e), e.to_string());
    }
    metrics::histogram!(m::INGRESS_BODY_BYTES).record(body.len() as f64);

    let entry = JournalEntry {
        source: source_name.to_string(),
        received_at_ms: crate::time::unix_ms(),
        request_id: request_id.to_string(),
        signature: header_text(req, "x-hub-signature-256"),
        user_agent: rejections::clip(
            &header_text(req, "user-agent"),
            rejections::HEADER_MAX_BYTES,
        )
        .to_string(),
        body,
    };
    let (outcome, detail) = journal(state, writer, entry).await;
    if outcome == Outcome::Accepted {
        tracing::debug!(source = %source_name, %request_id, journal_id = %detail, "journaled");
    }
    (outcome, detail)
}

/// A test suite's sample, signed with the source's first app secret, through the checks and
/// the journal Meta's requests go through (it is left out of their metrics). The journal id,
/// or the status and reason ingress would have answered.
pub async fn accept_sample(
    state: &AppState,
    writer: &JournalWriter,
    source_name: &str,
    request_id: String,
    body: Bytes,
) -> Result<String, (StatusCode, String)> {
    let Some((name, source)) = state.source(source_name) else {
        return Err((StatusCode::NOT_FOUND, "unknown source".into()));
    };
    let Some(secret) = source.secrets.first() else {
        return Err((
            StatusCode::UNAUTHORIZED,
            "the source has no app secret".into(),
        ));
    };
    let header = signature::sign(secret, &body);
    if let Err(e) = signature::verify(Some(header.as_bytes()), &body, &source.secrets) {
        return Err((StatusCode::UNAUTHORIZED, e.to_string()));
    }
    if body.len() > state.settings.server.max_body_bytes {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "body exceeds server.max_body_bytes".into(),
        ));
    }
    let entry = JournalEntry {
        source: name.to_string(),
        received_at_ms: crate::time::unix_ms(),
        request_id,
        signature: header,
        user_agent: "hookd-test-suite".into(),
        body,
    };
    match journal(state, writer, entry).await {
        (Outcome::Accepted, journal_id) => Ok(journal_id),
        (outcome, detail) => Err((outcome.status(), detail)),
    }
}

async fn journal(
    state: &AppState,
    writer: &JournalWriter,
    entry: JournalEntry,
) -> (Outcome, String) {
    if state.storage_gate.is_down() {
        return (
            Outcome::Unavailable,
            "storage is unreachable, retry later".into(),
        );
    }
    let (tx, rx) = oneshot::channel();
    match writer.0.try_send(Journal { entry, reply: tx }) {
        Ok(()) => {}
        Err(SendError::Full(_)) => {
            metrics::counter!(m::MAILBOX_FULL, "actor" => "ingress_writer").increment(1);
            return (
                Outcome::Overloaded,
                "journal queue is full, retry later".into(),
            );
        }
        Err(SendError::Closed(_)) => {
            return (Outcome::Unavailable, "journal writer is not running".into());
        }
    }
    let (outcome, detail) = match tokio::time::timeout(state.settings.ingress.ack_timeout, rx).await
    {
        Ok(Ok(Ok(journal_id))) => (Outcome::Accepted, journal_id),
        Ok(Ok(Err(JournalError::Overloaded))) => (
            Outcome::Overloaded,
            "journal queue is full, retry later".into(),
        ),
        Ok(Ok(Err(e))) => (Outcome::Unavailable, e.to_string()),
        Ok(Err(_)) => (Outcome::Unavailable, "journal writer restarted".into()),
        Err(_) => (Outcome::Unavailable, "journal write timed out".into()),
    };
    if outcome == Outcome::Unavailable {
        let store = state.store.clone();
        state.storage_gate.mark_down(PROBE_EVERY, move || {
            let store = store.clone();
            async move { store.ping().await.is_ok() }
        });
    }
    (outcome, detail)
}

enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads the body up to `limit` bytes, refusing early when Content-Length already says more.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn request_id(req: &HttpRequest) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        // Reserved for test suites' samples, which are delivered and counted differently.
        .filter(|v| !crate::suites::is_test(v))
        .map(str::to_string)
        .unwrap_or_else(|| {
            use rand::Rng;
            hex::encode(rand::rng().random::<[u8; 12]>())
        })
}

fn header_text(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default()
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain")
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_label_is_registered_at_zero() {
        let all = [
            Outcome::Accepted,
            Outcome::Rejected(signature::SignatureError::Missing),
            Outcome::Rejected(signature::SignatureError::Malformed),
            Outcome::Rejected(signature::SignatureError::Mismatch),
            Outcome::ClientCert(ClientCertRefusal::Missing),
            Outcome::ClientCert(ClientCertRefusal::Untrusted),
            Outcome::ClientCert(ClientCertRefusal::WrongName),
            Outcome::TooLarge,
            Outcome::UnknownSource,
            Outcome::Overloaded,
            Outcome::Unavailable,
            Outcome::BadBody,
        ];
        for outcome in all {
            assert!(
                m::INGRESS_OUTCOMES.contains(&outcome.label()),
                "{} missing from metrics::INGRESS_OUTCOMES",
                outcome.label()
            );
        }
        assert_eq!(m::INGRESS_OUTCOMES.len(), all.len());
    }
}
