//! Tenants, API keys and endpoints: what they hold and the rules their input must follow.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{MAX_TIMEOUT, signing};
use crate::meta::Platform;
use crate::model::{Endpoint, new_id};

impl Endpoint {
    /// A new endpoint of `tenant_id` with a fresh id and secret and nothing subscribed yet;
    /// [`apply`] fills in the rest.
    pub fn new(tenant_id: &str, now_ms: u64) -> Endpoint {
        Endpoint {
            id: new_id("ep_", 8),
            tenant_id: tenant_id.to_string(),
            url: String::new(),
            description: String::new(),
            event_types: Vec::new(),
            account_ids: Vec::new(),
            secret: signing::generate_secret(),
            previous_secrets: Vec::new(),
            enabled: true,
            rate_limit: None,
            max_in_flight: None,
            timeout_ms: None,
            retry_schedule_ms: None,
            headers: BTreeMap::new(),
            raw: false,
            ordering: crate::model::Ordering::None,
            created_at: now_ms,
            updated_at: now_ms,
        }
    }

    /// Signing keys in force at `now_ms`: the current secret first, then unexpired old ones.
    pub fn signing_keys(&self, now_ms: u64) -> Vec<Vec<u8>> {
        std::iter::once(self.secret.as_str())
            .chain(
                self.previous_secrets
                    .iter()
                    .filter(|p| p.expires_at > now_ms)
                    .map(|p| p.secret.as_str()),
            )
            .filter_map(|s| signing::secret_key(s).ok())
            .collect()
    }
}

/// An endpoint's fields as a client sends them: all optional, so one type serves create
/// (where `url` and `event_types` are required) and PATCH.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointInput {
    /// Admin only: the tenant the endpoint belongs to.
    pub tenant_id: Option<String>,
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub account_ids: Option<Vec<String>>,
    pub secret: Option<String>,
    pub enabled: Option<bool>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub max_in_flight: Option<Option<u32>>,
    /// `"5s"`, `"1500ms"`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub timeout: Option<Option<String>>,
    /// `["0s", "10s", "1m"]`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<String>>)]
    pub retry_schedule: Option<Option<Vec<String>>>,
    pub headers: Option<BTreeMap<String, String>>,
    pub raw: Option<bool>,
    /// `conversation`: events of one conversation in the order received, one at a time.
    /// JSON mode only.
    pub ordering: Option<crate::model::Ordering>,
    /// `timeout` in ms, the form the API shows (give one of the two).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u64>)]
    pub timeout_ms: Option<Option<u64>>,
    /// `retry_schedule` in ms, the form the API shows (give one of the two).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<u64>>)]
    pub retry_schedule_ms: Option<Option<Vec<u64>>>,
    /// What the API shows but only hookd sets. Accepted, so that an endpoint read from the
    /// API can be written back as it is, and otherwise ignored.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub created_at: Option<u64>,
    #[serde(default)]
    pub updated_at: Option<u64>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
    #[serde(default)]
    pub disabled_at: Option<u64>,
    #[serde(default)]
    pub last_success: Option<u64>,
    #[serde(default)]
    pub last_failure: Option<u64>,
    #[serde(default)]
    pub failing_since: Option<u64>,
}

/// Tells "absent" (outer `None`) from "null" (`Some(None)`) for PATCH.
fn double_option<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A rule an endpoint's input broke, with the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct Invalid {
    pub field: std::borrow::Cow<'static, str>,
    pub problem: String,
}

fn invalid(field: &'static str, problem: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// What the validation of a URL needs from the deployment.
pub struct UrlRules<'a> {
    pub https_only: bool,
    pub guard: &'a super::ssrf::AddressPolicy,
}

/// Headers hookd sets itself; an endpoint may not replace them.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-hub-signature-256",
];

/// Applies `input` to `endpoint` (a fresh one on create), checking every field it sets.
pub fn apply(
    endpoint: &mut Endpoint,
    input: EndpointInput,
    rules: &UrlRules<'_>,
) -> Result<(), Invalid> {
    if let Some(url) = input.url {
        check_url(&url, rules)?;
        endpoint.url = url;
    }
    if let Some(d) = input.description {
        if d.chars().count() > 1000 {
            return Err(invalid("description", "at most 1000 characters"));
        }
        endpoint.description = d;
    }
    if let Some(types) = input.event_types {
        if types.is_empty() || types.len() > 100 {
            return Err(invalid("event_types", "between 1 and 100 patterns"));
        }
        for t in &types {
            TypePattern::parse(t).map_err(|p| invalid("event_types", p))?;
        }
        endpoint.event_types = types;
    }
    if let Some(ids) = input.account_ids {
        check_account_ids(&ids)?;
        endpoint.account_ids = ids;
    }
    if let Some(secret) = input.secret {
        signing::secret_key(&secret).map_err(|e| invalid("secret", e.to_string()))?;
        endpoint.secret = secret;
    }
    if let Some(enabled) = input.enabled {
        endpoint.enabled = enabled;
    }
    if let Some(rate) = input.rate_limit {
        if rate.is_some_and(|r| !(1..=100_000).contains(&r)) {
            return Err(invalid("rate_limit", "between 1 and 100000 per second"));
        }
        endpoint.rate_limit = rate;
    }
    if let Some(max) = input.max_in_flight {
        if max.is_some_and(|m| !(1..=10_000).contains(&m)) {
            return Err(invalid("max_in_flight", "between 1 and 10000"));
        }
        endpoint.max_in_flight = max;
    }
    let timeout = match (input.timeout, input.timeout_ms) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "timeout_ms",
                "give timeout or timeout_ms, not both",
            ));
        }
        (None, Some(ms)) => Some(ms.map(|ms| format!("{ms}ms"))),
        (t, None) => t,
    };
    let schedule = match (input.retry_schedule, input.retry_schedule_ms) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "retry_schedule_ms",
                "give retry_schedule or retry_schedule_ms, not both",
            ));
        }
        (None, Some(ms)) => Some(ms.map(|ms| ms.iter().map(|d| format!("{d}ms")).collect())),
        (s, None) => s,
    };
    if let Some(timeout) = timeout {
        endpoint.timeout_ms = match timeout {
            None => None,
            Some(t) => {
                let d = parse_duration("timeout", &t)?;
                if d < Duration::from_millis(100) || d > MAX_TIMEOUT {
                    return Err(invalid(
                        "timeout",
                        format!("between 100ms and {MAX_TIMEOUT:?}"),
                    ));
                }
                Some(d.as_millis() as u64)
            }
        };
    }
    if let Some(schedule) = schedule {
        endpoint.retry_schedule_ms = match schedule {
            None => None,
            Some(s) => {
                if s.is_empty() || s.len() > 50 {
                    return Err(invalid("retry_schedule", "between 1 and 50 delays"));
                }
                let mut out = Vec::with_capacity(s.len());
                for d in &s {
                    let d = parse_duration("retry_schedule", d)?;
                    if d > Duration::from_secs(7 * 86_400) {
                        return Err(invalid("retry_schedule", "each delay at most 7 days"));
                    }
                    out.push(d.as_millis() as u64);
                }
                Some(out)
            }
        };
    }
    if let Some(headers) = input.headers {
        check_headers(&headers)?;
        endpoint.headers = headers;
    }
    if let Some(raw) = input.raw {
        endpoint.raw = raw;
    }
    if let Some(ordering) = input.ordering {
        endpoint.ordering = ordering;
    }
    if endpoint.raw && endpoint.ordering == crate::model::Ordering::Conversation {
        // A raw delivery is Meta's whole request, which may hold many conversations.
        return Err(invalid(
            "ordering",
            "conversation order needs JSON mode: a raw request may hold many conversations",
        ));
    }
    Ok(())
}

/// Meta account ids as an endpoint filter or a tenant's accounts take them.
pub fn check_account_ids(ids: &[String]) -> Result<(), Invalid> {
    if ids.len() > 1000 {
        return Err(invalid("account_ids", "at most 1000 ids"));
    }
    let ok = |id: &String| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    match ids.iter().find(|id| !ok(id)) {
        Some(bad) => Err(invalid(
            "account_ids",
            format!("{bad:?} is not an account id (1-64 of a-z, A-Z, 0-9, _ and -)"),
        )),
        None => Ok(()),
    }
}

fn parse_duration(field: &'static str, text: &str) -> Result<Duration, Invalid> {
    humantime::parse_duration(text).map_err(|e| {
        invalid(
            field,
            format!("{text:?} is not a duration like \"5s\": {e}"),
        )
    })
}

fn check_url(url: &str, rules: &UrlRules<'_>) -> Result<(), Invalid> {
    if url.len() > 2048 {
        return Err(invalid("url", "at most 2048 characters"));
    }
    // Parsed the way browsers and resolvers read hosts (WHATWG URL): `2130706433`, `0x7f.1`,
    // `0177.0.0.1` and `127.0.0.1.` are all 127.0.0.1, and must be judged as such.
    let parsed = url::Url::parse(url).map_err(|e| invalid("url", format!("not a URL: {e}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if !rules.https_only => {}
        "http" => {
            return Err(invalid(
                "url",
                "must be https:// (delivery.ssrf.https_only)",
            ));
        }
        _ => return Err(invalid("url", "must start with http:// or https://")),
    }
    // The outbound client sends what hyper reads; both must agree the URL is usable.
    url.parse::<hyper::Uri>()
        .map_err(|e| invalid("url", format!("not a URL: {e}")))?;
    // Names are checked again after DNS at every connection; an address can be judged now.
    let ip = match parsed.host() {
        None => return Err(invalid("url", "has no host")),
        Some(url::Host::Domain("")) => return Err(invalid("url", "has no host")),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
    };
    if let Some(ip) = ip {
        rules
            .guard
            .check(ip)
            .map_err(|e| invalid("url", e.to_string()))?;
    }
    Ok(())
}

fn check_headers(headers: &BTreeMap<String, String>) -> Result<(), Invalid> {
    if headers.len() > 20 {
        return Err(invalid("headers", "at most 20 headers"));
    }
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(invalid("headers", format!("{name} is set by hookd")));
        }
        hyper::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| invalid("headers", format!("{name:?} is not a header name")))?;
        hyper::header::HeaderValue::from_str(value).map_err(|_| {
            invalid(
                "headers",
                format!("the value of {name} is not a header value"),
            )
        })?;
    }
    Ok(())
}

/// One of an endpoint's `event_types`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    All,
    Platform(Platform),
    Exact(String),
}

impl TypePattern {
    pub fn parse(text: &str) -> Result<TypePattern, String> {
        if text == "*" {
            return Ok(TypePattern::All);
        }
        let (platform, field) = text
            .split_once('.')
            .ok_or_else(|| format!("{text:?} is not `*`, `platform.*` or `platform.field`"))?;
        let platform = Platform::parse(platform).ok_or_else(|| {
            format!("{text:?}: unknown platform (whatsapp, messenger, page, instagram, other)")
        })?;
        if field == "*" {
            return Ok(TypePattern::Platform(platform));
        }
        let valid = !field.is_empty()
            && field.len() <= 100
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            return Err(format!("{text:?}: the field part is letters, digits and _"));
        }
        Ok(TypePattern::Exact(text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::ssrf::AddressPolicy;
    use crate::model::PreviousSecret;

    fn blank() -> Endpoint {
        Endpoint::new("t_1", 0)
    }

    fn input(json: &str) -> EndpointInput {
        serde_json::from_str(json).unwrap()
    }

    fn try_apply(json: &str, https_only: bool) -> Result<Endpoint, Invalid> {
        let guard = AddressPolicy::new(vec![]);
        let mut e = blank();
        apply(
            &mut e,
            input(json),
            &UrlRules {
                https_only,
                guard: &guard,
            },
        )?;
        Ok(e)
    }

    #[test]
    fn a_full_input_is_applied() {
        let e = try_apply(
            r#"{"url":"https://example.com/hook","event_types":["whatsapp.*","page.feed","*"],
                "account_ids":["1234"],"rate_limit":50,"timeout":"2s",
                "retry_schedule":["0s","1s"],"headers":{"X-Team":"a"},"raw":true}"#,
            true,
        )
        .unwrap();
        assert_eq!(e.timeout_ms, Some(2000));
        assert_eq!(e.retry_schedule_ms, Some(vec![0, 1000]));
        assert_eq!(e.rate_limit, Some(50));
        assert!(e.raw);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (r#"{"url":"ftp://x"}"#, "url"),
            (r#"{"url":"http://x.example"}"#, "url"), // https only
            (r#"{"url":"https://127.0.0.1/x"}"#, "url"),
            (r#"{"url":"https://[::1]/x"}"#, "url"),
            (r#"{"event_types":[]}"#, "event_types"),
            (r#"{"event_types":["sms.*"]}"#, "event_types"),
            (r#"{"event_types":["whatsapp.mess ages"]}"#, "event_types"),
            (r#"{"account_ids":["a b"]}"#, "account_ids"),
            (r#"{"secret":"nope"}"#, "secret"),
            (r#"{"rate_limit":0}"#, "rate_limit"),
            (r#"{"timeout":"2h"}"#, "timeout"),
            (r#"{"timeout":"soon"}"#, "timeout"),
            (r#"{"retry_schedule":[]}"#, "retry_schedule"),
            (r#"{"headers":{"webhook-id":"x"}}"#, "headers"),
            (r#"{"headers":{"bad name":"x"}}"#, "headers"),
        ];
        for (json, field) in cases {
            let err = try_apply(json, true).expect_err(json);
            assert_eq!(err.field, field, "{json}: {err}");
        }
    }

    #[test]
    fn every_spelling_of_a_private_address_is_refused_at_save() {
        for url in [
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://127.0.0.1./",
            "http://127.000.000.001/",
            "http://0x7f.1/",
            "http://0xa9fea9fe/",
            "http://2852039166/",
            "http://[::ffff:127.0.0.1]/",
            "http://[0:0:0:0:0:0:0:1]/",
        ] {
            let json = format!(r#"{{"url":"{url}"}}"#);
            let err = try_apply(&json, false).expect_err(url);
            assert_eq!(err.field, "url", "{url}: {err}");
        }
    }

    #[test]
    fn a_port_out_of_range_is_refused() {
        let err =
            try_apply(r#"{"url":"http://example.invalid:99999/"}"#, false).expect_err("port 99999");
        assert_eq!(err.field, "url");
        try_apply(r#"{"url":"http://example.com:8443/hook"}"#, false).expect("a fine port");
    }

    #[test]
    fn null_clears_an_optional_limit() {
        let mut e = try_apply(r#"{"rate_limit":5}"#, false).unwrap();
        let guard = AddressPolicy::new(vec![]);
        let rules = UrlRules {
            https_only: false,
            guard: &guard,
        };
        apply(&mut e, input(r#"{"rate_limit":null}"#), &rules).unwrap();
        assert_eq!(e.rate_limit, None);
    }

    #[test]
    fn expired_previous_secrets_stop_signing() {
        let mut e = blank();
        e.previous_secrets = vec![
            PreviousSecret {
                secret: signing::generate_secret(),
                expires_at: 100,
            },
            PreviousSecret {
                secret: signing::generate_secret(),
                expires_at: 300,
            },
        ];
        assert_eq!(e.signing_keys(200).len(), 2);
        assert_eq!(e.signing_keys(400).len(), 1);
    }
}
