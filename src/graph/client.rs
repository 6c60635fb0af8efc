//! The Graph API client: one call is one HTTPS request with the token in the `Authorization`
//! header (never in a URL, where proxies log it), its answer read as JSON and Meta's error
//! object turned into a [`GraphError`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Method;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::error::{GraphError, failure_of};
use crate::config::GraphSettings;
use crate::metrics as m;

/// Graph answers are small; anything larger is not an answer hookd asked for.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// What a call sends.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    /// `application/x-www-form-urlencoded`, as Meta's examples post parameters.
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

#[derive(Clone)]
pub struct GraphClient {
    /// `{base_url}/{version}`, without a trailing slash.
    root: String,
    timeout: Duration,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl GraphClient {
    pub fn new(settings: &GraphSettings) -> GraphClient {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        GraphClient {
            root: format!(
                "{}/{}",
                settings.base_url.trim_end_matches('/'),
                settings.version
            ),
            timeout: settings.timeout,
            http: Client::builder(TokioExecutor::new()).build(https),
        }
    }

    /// `method` on `path` (node ids and edge names, e.g. `123/subscriptions`) with `query`
    /// parameters and `body`, as the holder of `token`. The answer's JSON, or why not.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body,
        token: &str,
    ) -> Result<Value, GraphError> {
        let result = self.exchange(method, path, query, body, token).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(GraphError::Refused(_)) => "refused",
            Err(GraphError::RateLimited { .. }) => "rate_limited",
            Err(GraphError::Unreachable(_) | GraphError::BadAnswer(_)) => "unreachable",
        };
        metrics::counter!(m::GRAPH_CALLS, "outcome" => outcome).increment(1);
        result
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body,
        token: &str,
    ) -> Result<Value, GraphError> {
        let mut url = format!("{}/{path}", self.root);
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        let (content_type, bytes) = match body {
            Body::None => (None, Bytes::new()),
            Body::Form(pairs) => (
                Some("application/x-www-form-urlencoded"),
                Bytes::from(
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())))
                        .finish(),
                ),
            ),
            Body::Json(v) => (Some("application/json"), Bytes::from(v.to_string())),
        };
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(&url)
            .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(
                hyper::header::USER_AGENT,
                concat!("hookd/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(ct) = content_type {
            builder = builder.header(hyper::header::CONTENT_TYPE, ct);
        }
        let request = builder
            .body(Full::new(bytes))
            .map_err(|e| GraphError::Unreachable(format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response =
                self.http.request(request).await.map_err(|e| {
                    GraphError::Unreachable(crate::delivery::client::error_chain(&e))
                })?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let usage = header("x-business-use-case-usage");
            let retry_after = header("retry-after");
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| GraphError::BadAnswer(e.to_string()))?
                .to_bytes();
            let json: Value = if body.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&body)
                    .map_err(|e| GraphError::BadAnswer(format!("HTTP {status}: {e}")))?
            };
            match failure_of(status, &json, usage.as_deref(), retry_after.as_deref()) {
                Some(error) => Err(error),
                None => Ok(json),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(GraphError::Unreachable(format!(
                    "no answer within {:?}",
                    self.timeout
                )))
            })
    }
}
