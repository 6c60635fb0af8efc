//! A test suite: one signed, Meta-shaped sample of each chosen event type for one account of a
//! source, sent through hookd's own ingress to the endpoints the suite names, and its runs.

use serde::{Deserialize, Serialize};

/// The request id prefix of test samples.
pub const REQUEST_PREFIX: &str = "hookd-test.";

/// The request id of the `n`th sample of a run.
pub fn request_id(suite_id: &str, run_id: &str, n: usize) -> String {
    format!("{REQUEST_PREFIX}{suite_id}.{run_id}.{n}")
}

/// The suite and run of a test sample's request id; `None` for any other request.
pub fn test_of(request_id: &str) -> Option<(&str, &str)> {
    let mut parts = request_id.strip_prefix(REQUEST_PREFIX)?.split('.');
    let (suite, run) = (parts.next()?, parts.next()?);
    Some((suite, run))
}

pub fn is_test(request_id: &str) -> bool {
    request_id.starts_with(REQUEST_PREFIX)
}

/// The suite and run a test event came from; absent on every other event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TestOrigin {
    pub suite_id: String,
    pub run_id: String,
}

impl TestOrigin {
    pub fn of(request_id: &str) -> Option<TestOrigin> {
        test_of(request_id).map(|(suite, run)| TestOrigin {
            suite_id: suite.to_string(),
            run_id: run.to_string(),
        })
    }
}

/// Runs a suite keeps, newest first; an older one's record goes when a new one starts.
pub const RUNS_KEPT: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestSuite {
    pub id: String,
    pub name: String,
    /// The owning tenant; empty for the admin's own.
    #[serde(default)]
    pub tenant_id: String,
    /// The configured source whose app secret signs the samples.
    pub source: String,
    /// Meta's webhook object: `whatsapp_business_account`, `page` or `instagram`.
    pub object: String,
    /// The account the samples come to (a WhatsApp phone number id, a Page id, an Instagram
    /// account id): it replaces the samples' own.
    pub account_id: String,
    /// The only endpoints its events are delivered to (those of them that take the type).
    pub endpoint_ids: Vec<String>,
    /// The event types it sends, one sample each.
    pub types: Vec<String>,
    pub created_at: u64,
    /// Newest first, at most [`RUNS_KEPT`].
    #[serde(default)]
    pub runs: Vec<TestRun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRun {
    pub id: String,
    pub started_at: u64,
    /// One per type, in the suite's order.
    pub sent: Vec<SentSample>,
}

/// What ingress made of one sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SentSample {
    #[serde(rename = "type")]
    pub event_type: String,
    /// The status ingress answered (200 once journaled).
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_id: Option<String>,
    /// Why it was not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
