//! What a failed Graph call looks like: Meta's error object as it sent it, and whether it is a
//! rate limit (and for how long).

use serde::Serialize;
use serde_json::Value;

/// Meta's `{"error": {…}}`, with the HTTP status it came with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphFailure {
    pub status: u16,
    pub code: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    #[error("Meta's Graph API refused the call (HTTP {}, code {}): {}", .0.status, .0.code, .0.message)]
    Refused(GraphFailure),
    #[error("Meta's Graph API rate-limits this call (code {}): {}", .failure.code, .failure.message)]
    RateLimited {
        failure: GraphFailure,
        retry_after_secs: u64,
    },
    #[error("Meta's Graph API could not be reached: {0}")]
    Unreachable(String),
    #[error("Meta's Graph API answered something that is not its JSON: {0}")]
    BadAnswer(String),
}

impl GraphError {
    /// Meta's error object, when Meta answered with one.
    pub fn failure(&self) -> Option<&GraphFailure> {
        match self {
            GraphError::Refused(f) | GraphError::RateLimited { failure: f, .. } => Some(f),
            GraphError::Unreachable(_) | GraphError::BadAnswer(_) => None,
        }
    }
}

/// Codes Meta documents as throttling: application (4), user (17), Page (32) and custom (613)
/// limits, and the Business Use Case limits (80000–80014; 80007 is a WhatsApp Business
/// Account's).
pub fn is_rate_limit_code(code: i64) -> bool {
    matches!(code, 4 | 17 | 32 | 613 | 80_000..=80_014)
}

/// How long to wait when nothing says: Meta's limits are over a rolling hour, most recover in
/// minutes.
const DEFAULT_RETRY_AFTER_SECS: u64 = 60;

/// The error of a Graph answer with `status` and `body`, if it is one.
pub fn failure_of(
    status: u16,
    body: &Value,
    usage: Option<&str>,
    retry_after: Option<&str>,
) -> Option<GraphError> {
    let error = body.get("error");
    if error.is_none() && (200..300).contains(&status) {
        return None;
    }
    let error = error.cloned().unwrap_or(Value::Null);
    let text = |k: &str| error.get(k).and_then(Value::as_str).map(str::to_string);
    let failure = GraphFailure {
        status,
        code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
        error_subcode: error.get("error_subcode").and_then(Value::as_i64),
        kind: text("type").unwrap_or_default(),
        message: text("message")
            .unwrap_or_else(|| format!("HTTP {status} without an error object")),
        fbtrace_id: text("fbtrace_id"),
    };
    if status == 429 || is_rate_limit_code(failure.code) {
        let retry_after_secs = usage
            .and_then(regain_access_secs)
            .or_else(|| retry_after.and_then(|s| s.trim().parse().ok()))
            .unwrap_or(DEFAULT_RETRY_AFTER_SECS);
        return Some(GraphError::RateLimited {
            failure,
            retry_after_secs,
        });
    }
    Some(GraphError::Refused(failure))
}

/// The longest `estimated_time_to_regain_access` (minutes) of an `X-Business-Use-Case-Usage`
/// header (`{"<business id>": [{"type": …, "estimated_time_to_regain_access": 19}, …]}`), in
/// seconds; `None` when it names none above zero.
pub fn regain_access_secs(header: &str) -> Option<u64> {
    let usage: Value = serde_json::from_str(header).ok()?;
    usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|u| u.get("estimated_time_to_regain_access")?.as_u64())
        .max()
        .filter(|m| *m > 0)
        .map(|minutes| minutes * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_success_is_no_failure() {
        assert!(failure_of(200, &json!({"success": true}), None, None).is_none());
    }

    #[test]
    fn an_error_object_keeps_every_field_meta_sent() {
        let body = json!({"error": {"message": "(#100) Invalid parameter", "type": "OAuthException",
            "code": 100, "error_subcode": 2018001, "fbtrace_id": "AbC"}});
        let Some(GraphError::Refused(f)) = failure_of(400, &body, None, None) else {
            panic!("a refusal");
        };
        assert_eq!(
            (f.status, f.code, f.error_subcode),
            (400, 100, Some(2018001))
        );
        assert_eq!(
            (f.kind.as_str(), f.fbtrace_id.as_deref()),
            ("OAuthException", Some("AbC"))
        );
    }

    #[test]
    fn throttling_codes_and_429_are_rate_limits_with_the_wait_meta_estimates() {
        let body = json!({"error": {"message": "(#80007) Rate limit", "code": 80007}});
        let usage = r#"{"102290129340398":[{"type":"whatsapp_business_management","call_count":100,"estimated_time_to_regain_access":3},{"type":"x","estimated_time_to_regain_access":7}]}"#;
        match failure_of(400, &body, Some(usage), None) {
            Some(GraphError::RateLimited {
                retry_after_secs,
                failure,
            }) => {
                assert_eq!(retry_after_secs, 420);
                assert_eq!(failure.code, 80007);
            }
            other => panic!("{other:?}"),
        }
        let app_limit =
            json!({"error": {"message": "(#4) Application request limit reached", "code": 4}});
        assert!(matches!(
            failure_of(403, &app_limit, None, None),
            Some(GraphError::RateLimited {
                retry_after_secs: 60,
                ..
            })
        ));
        assert!(matches!(
            failure_of(429, &json!({}), None, Some("12")),
            Some(GraphError::RateLimited {
                retry_after_secs: 12,
                ..
            })
        ));
    }

    #[test]
    fn a_usage_header_without_a_wait_gives_none() {
        assert_eq!(
            regain_access_secs(r#"{"1":[{"estimated_time_to_regain_access":0}]}"#),
            None
        );
        assert_eq!(regain_access_secs("not json"), None);
    }
}
