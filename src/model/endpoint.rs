//! Subscriber endpoints: what a tenant configured, and what hookd observed of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A secret that still signs after a rotation, until `expires_at` (Unix ms).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PreviousSecret {
    pub secret: String,
    pub expires_at: u64,
}

/// A subscriber's URL and what it wants. Stored as JSON; the secret never leaves through the
/// API except on creation, rotation and `GET …/secret`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub id: String,
    /// Empty for an endpoint the admin owns: it may receive every account's events.
    pub tenant_id: String,
    pub url: String,
    pub description: String,
    /// Exact types, `platform.*` or `*`.
    pub event_types: Vec<String>,
    /// When not empty, only events of these receiving accounts.
    pub account_ids: Vec<String>,
    pub secret: String,
    #[serde(default)]
    pub previous_secrets: Vec<PreviousSecret>,
    pub enabled: bool,
    /// Requests per second; `None` is unlimited.
    pub rate_limit: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub timeout_ms: Option<u64>,
    /// Delays in ms before each attempt, replacing the configured schedule.
    pub retry_schedule_ms: Option<Vec<u64>>,
    pub headers: BTreeMap<String, String>,
    /// Forward Meta's original body, signed like Meta signs (`X-Hub-Signature-256`).
    pub raw: bool,
    /// Whether events of one conversation wait for each other (JSON mode only).
    #[serde(default)]
    pub ordering: Ordering,
    pub created_at: u64,
    pub updated_at: u64,
}

/// The order an endpoint receives events in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// As fast as the endpoint takes them: a retry does not hold anything else back.
    #[default]
    None,
    /// Per conversation (see `meta::conversation`), in the order hookd received them, one
    /// at a time; a failing delivery holds back only its own conversation.
    Conversation,
}

/// What an endpoint's mutable state says about it (kept apart from its configuration, which
/// only its owner changes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointHealth {
    /// Set when hookd disabled the endpoint: `gone` (410) or `failing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<u64>,
    /// First failure since the last success.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<u64>,
}

/// An endpoint as the delivery side sees it.
#[derive(Debug, Clone)]
pub struct LiveEndpoint {
    pub endpoint: Endpoint,
    pub health: EndpointHealth,
}

impl LiveEndpoint {
    /// Configured on and not disabled by hookd.
    pub fn active(&self) -> bool {
        self.endpoint.enabled && self.health.disabled_reason.is_none()
    }
}
