//! The request an attempt sends: URL, body and the headers that sign it.

use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue};

use super::client::OutboundRequest;
use super::signing::signature_header;
use crate::model::Endpoint;

/// Why no request could be built. Retrying cannot help: the delivery is given up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the endpoint URL does not parse: {0}")]
    Url(String),
    #[error("the endpoint has no usable secret")]
    NoSecret,
}

/// Signs `body` for `endpoint` (Standard Webhooks headers; in raw mode also Meta's
/// `X-Hub-Signature-256`, keyed with the endpoint's secret as text, the way receivers written
/// for Meta use their app secret) and adds the endpoint's own headers.
pub fn signed_request(
    endpoint: &Endpoint,
    webhook_id: &str,
    body: Bytes,
    now_ms: u64,
    default_timeout: Duration,
) -> Result<OutboundRequest, RequestError> {
    let url = endpoint
        .url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| RequestError::Url(e.to_string()))?;
    let keys = endpoint.signing_keys(now_ms);
    if keys.is_empty() {
        return Err(RequestError::NoSecret);
    }
    let timestamp = now_ms / 1000;
    let signature = signature_header(&keys, webhook_id, timestamp, &body);
    let mut headers = Vec::with_capacity(4 + endpoint.headers.len());
    let mut push = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.push((HeaderName::from_static(name), v));
        }
    };
    push("webhook-id", webhook_id);
    push("webhook-timestamp", &timestamp.to_string());
    push("webhook-signature", &signature);
    if endpoint.raw {
        let meta = crate::meta::signature::sign(endpoint.secret.as_bytes(), &body);
        push("x-hub-signature-256", &meta);
    }
    for (name, value) in &endpoint.headers {
        // Validated when the endpoint was saved; anything odd since is skipped, not sent.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.push((n, v));
        }
    }
    let timeout = endpoint
        .timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(default_timeout);
    Ok(OutboundRequest {
        url,
        headers,
        body,
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(raw: bool) -> Endpoint {
        Endpoint {
            url: "https://example.com/hook".into(),
            event_types: vec!["*".into()],
            timeout_ms: Some(1500),
            headers: [("X-Team".to_string(), "blue".to_string())].into(),
            raw,
            ..Endpoint::new("t", 0)
        }
    }

    fn header<'a>(r: &'a OutboundRequest, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }

    #[test]
    fn a_json_delivery_carries_standard_webhooks_headers_and_custom_ones() {
        let r = signed_request(
            &endpoint(false),
            "evt_1",
            Bytes::from_static(b"{}"),
            1_700_000_000_123,
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(header(&r, "webhook-id"), Some("evt_1"));
        assert_eq!(header(&r, "webhook-timestamp"), Some("1700000000"));
        assert!(header(&r, "webhook-signature").unwrap().starts_with("v1,"));
        assert_eq!(header(&r, "x-team"), Some("blue"));
        assert_eq!(header(&r, "x-hub-signature-256"), None);
        assert_eq!(r.timeout, Duration::from_millis(1500));
    }

    #[test]
    fn raw_mode_adds_a_meta_signature_made_with_the_endpoint_secret() {
        let e = endpoint(true);
        let body = Bytes::from_static(br#"{"object":"page","entry":[]}"#);
        let r = signed_request(&e, "raw_1", body.clone(), 0, Duration::from_secs(1)).unwrap();
        let sig = header(&r, "x-hub-signature-256").unwrap();
        assert_eq!(
            crate::meta::signature::verify(Some(sig.as_bytes()), &body, &[e.secret.as_bytes()]),
            Ok(())
        );
    }
}
