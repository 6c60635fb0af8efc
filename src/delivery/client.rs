//! The outbound HTTP client: pooled hyper connections, TLS by rustls, and the SSRF guard in the
//! connector, where the resolved addresses are known.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper::header::{HeaderName, HeaderValue};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::RESPONSE_KEEP_BYTES;
use super::ssrf::{AddressPolicy, Blocked};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Resolves, drops addresses the policy refuses, connects to the first that answers.
#[derive(Clone)]
pub struct GuardedConnector {
    policy: Arc<AddressPolicy>,
    connect_timeout: Duration,
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let (policy, connect_timeout) = (self.policy.clone(), self.connect_timeout);
        Box::pin(async move {
            let host = uri.host().ok_or("the URL has no host")?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri
                .port_u16()
                .unwrap_or(if uri.scheme_str() == Some("https") {
                    443
                } else {
                    80
                });
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect();
            let mut last_error: BoxError = format!("{host} resolves to no address").into();
            for addr in addrs {
                if let Err(blocked) = policy.check(addr.ip()) {
                    last_error = Box::new(blocked);
                    continue;
                }
                match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
                    Ok(Ok(stream)) => {
                        stream.set_nodelay(true)?;
                        return Ok(TokioIo::new(stream));
                    }
                    Ok(Err(e)) => last_error = Box::new(e),
                    Err(_) => last_error = format!("connect to {addr} timed out").into(),
                }
            }
            Err(last_error)
        })
    }
}

/// A pooled client for every endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<GuardedConnector>, Full<Bytes>>,
}

/// One request to an endpoint.
pub struct OutboundRequest {
    pub url: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub timeout: Duration,
}

/// What came back, or why nothing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attempted {
    pub status: Option<u16>,
    pub retry_after: Option<String>,
    /// The response body, cut at [`RESPONSE_KEEP_BYTES`] (lossy UTF-8).
    pub response: String,
    pub error: Option<String>,
    pub duration: Duration,
    /// The guard refused every address.
    pub blocked: bool,
}

impl Outbound {
    pub fn new(policy: AddressPolicy) -> Outbound {
        let connector = GuardedConnector {
            policy: Arc::new(policy),
            connect_timeout: Duration::from_secs(5),
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .build(https);
        Outbound { client }
    }

    /// POSTs, reads at most [`RESPONSE_KEEP_BYTES`] of the answer, all within the timeout.
    pub async fn post(&self, req: OutboundRequest) -> Attempted {
        let started = Instant::now();
        let mut builder = hyper::Request::post(req.url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("hookd/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in req.headers {
            builder = builder.header(name, value);
        }
        let request = match builder.body(Full::new(req.body)) {
            Ok(r) => r,
            Err(e) => {
                return Attempted {
                    error: Some(format!("cannot build the request: {e}")),
                    duration: started.elapsed(),
                    ..Attempted::default()
                };
            }
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = response.into_body();
            let mut kept = Vec::new();
            // Enough for the log; the rest is not waited for.
            while kept.len() < RESPONSE_KEEP_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            kept.extend_from_slice(&data);
                        }
                    }
                    Some(Err(_)) | None => break,
                }
            }
            kept.truncate(RESPONSE_KEEP_BYTES);
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after, kept))
        };
        match tokio::time::timeout(req.timeout, exchange).await {
            Ok(Ok((status, retry_after, kept))) => Attempted {
                status: Some(status),
                retry_after,
                response: String::from_utf8_lossy(&kept).into_owned(),
                error: None,
                duration: started.elapsed(),
                blocked: false,
            },
            Ok(Err(e)) => {
                let blocked = find_blocked(&e);
                Attempted {
                    error: Some(match blocked {
                        Some(b) => b.to_string(),
                        None => error_chain(&e),
                    }),
                    blocked: blocked.is_some(),
                    duration: started.elapsed(),
                    ..Attempted::default()
                }
            }
            Err(_) => Attempted {
                error: Some(format!("timed out after {:?}", req.timeout)),
                duration: started.elapsed(),
                ..Attempted::default()
            },
        }
    }
}

fn find_blocked<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<Blocked>() {
            return Some(b);
        }
        cur = err.source();
    }
    None
}

/// "outer: inner: innermost", since hyper's own message is often just "client error (Connect)".
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        parts.push(err.to_string());
        cur = err.source();
    }
    parts.join(": ")
}
