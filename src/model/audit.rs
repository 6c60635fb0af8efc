//! The audit log's record: who changed what through the management API, from where, and how
//! it ended. A change and its record are written together (see [`crate::store::AuditLog`]);
//! secret values never reach a record.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Endpoint;

/// What a record shows instead of a secret value.
pub const REDACTED: &str = "[redacted]";

/// The `actor` of records hookd writes itself (the end of a replay it ran).
pub const ACTOR_HOOKD: &str = "hookd";
/// The `actor` of a request made with the admin key.
pub const ACTOR_ADMIN: &str = "admin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The change was made (written together with this record).
    Applied,
    /// Work that cannot be atomic with a record (a replay, a purge, a request sent to an
    /// endpoint) was accepted and starts after this record; its end is recorded after it.
    Started,
    /// Refused for the request itself (bad input, not found, conflict): nothing changed.
    Refused,
    /// Not done for a fault on hookd's side (storage unreachable): nothing changed.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Started => "started",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Applied,
            Outcome::Started,
            Outcome::Refused,
            Outcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// The outcome of a request answered with `status` that did not record its change itself.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            500.. => Outcome::Failed,
            400.. => Outcome::Refused,
            _ => Outcome::Applied,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Given by storage when the record is written (`{ms}-{seq}`, newest highest).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// Unix ms.
    pub at: u64,
    /// `admin`, a tenant key's id (`key_…`, never the key), `hookd`, or `command:<name>` for
    /// a command run on the host.
    pub actor: String,
    /// The client's address (behind trusted proxies, the one they name); empty for hookd's
    /// own records and commands.
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub method: String,
    /// The route as registered, e.g. `/api/v1/endpoints/{id}`.
    #[serde(default)]
    pub route: String,
    /// What was done, e.g. `endpoint.update`.
    pub action: String,
    /// What it was done to (an endpoint, tenant, key, event id); empty when the route names
    /// none.
    #[serde(default)]
    pub object_id: String,
    /// The tenant the change concerns (its key sees the record); empty for the admin's own
    /// endpoints and for changes that concern no tenant.
    #[serde(default)]
    pub tenant_id: String,
    /// The fields changed (`{"url": {"from": …, "to": …}}`) or the parameters of the action;
    /// secret values are [`REDACTED`].
    #[serde(default)]
    #[schema(value_type = Object, nullable)]
    pub changes: Value,
    pub outcome: Outcome,
    /// The HTTP status the request was answered with, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Fields whose values are secrets: a record says that they changed, never to what.
const SECRET_FIELDS: &[&str] = &["secret", "previous_secrets", "key", "access_token"];
/// Maps whose keys are shown but whose values may hold credentials (an endpoint's custom
/// headers often carry an `Authorization`).
const SECRET_VALUED_MAPS: &[&str] = &["headers"];
/// URLs, whose password and query values may be credentials (`?token=…`).
const URL_FIELDS: &[&str] = &["url"];
/// Fields that change with every write and say nothing an auditor needs.
const NOISE_FIELDS: &[&str] = &["updated_at"];

/// `url` with its password and the values of its query redacted; a URL that does not parse is
/// redacted whole.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return REDACTED.into();
    };
    if parsed.password().is_none() && parsed.query().is_none() {
        // As given: parsing would add what the user did not write (a trailing `/`).
        return url.to_string();
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some(REDACTED));
    }
    if parsed.query().is_some() {
        let names: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
        parsed
            .query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|k| (k.as_str(), REDACTED)));
    }
    parsed.into()
}

/// `value` as a record may show it under `field`.
pub fn redact(field: &str, value: &Value) -> Value {
    if URL_FIELDS.contains(&field)
        && let Value::String(url) = value
    {
        return Value::String(redact_url(url));
    }
    if SECRET_FIELDS.contains(&field) {
        return if value.is_null() {
            Value::Null
        } else {
            Value::String(REDACTED.into())
        };
    }
    if SECRET_VALUED_MAPS.contains(&field)
        && let Value::Object(map) = value
    {
        return Value::Object(
            map.keys()
                .map(|k| (k.clone(), Value::String(REDACTED.into())))
                .collect(),
        );
    }
    value.clone()
}

/// Every field of a JSON object, redacted: the parameters of an action or a created object.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(k, v))).collect())
        }
        other => other.clone(),
    }
}

/// The top-level fields that differ between two JSON objects, as `{"from", "to"}` pairs
/// (`from` is absent for a field `before` lacks), redacted. A secret that changed shows as
/// `{"from": "[redacted]", "to": "[redacted]"}`: that it changed, not what it is.
pub fn changes_between(before: &Value, after: &Value) -> Value {
    let empty = Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    let fields = after
        .keys()
        .chain(before.keys().filter(|k| !after.contains_key(*k)));
    for field in fields {
        if NOISE_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let (b, a) = (before.get(field), after.get(field));
        if b == a {
            continue;
        }
        let mut pair = Map::new();
        if let Some(b) = b {
            pair.insert("from".into(), redact(field, b));
        }
        pair.insert("to".into(), a.map_or(Value::Null, |a| redact(field, a)));
        out.insert(field.clone(), Value::Object(pair));
    }
    Value::Object(out)
}

/// What a change to an endpoint changed (`before` is `None` for a new one).
pub fn endpoint_changes(before: Option<&Endpoint>, after: &Endpoint) -> Value {
    let json = |e: &Endpoint| serde_json::to_value(e).unwrap_or(Value::Null);
    let before = before.map_or(Value::Object(Map::new()), json);
    changes_between(&before, &json(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_secret_shows_that_it_changed_and_never_its_value() {
        let before = json!({"url": "https://a", "secret": "whsec_old", "enabled": true});
        let after = json!({"url": "https://b", "secret": "whsec_new", "enabled": true});
        let changes = changes_between(&before, &after);
        assert_eq!(
            changes,
            json!({
                "url": {"from": "https://a", "to": "https://b"},
                "secret": {"from": REDACTED, "to": REDACTED},
            })
        );
        assert!(!changes.to_string().contains("whsec_"));
    }

    #[test]
    fn header_names_are_shown_and_their_values_are_not() {
        let before = json!({"headers": {}});
        let after = json!({"headers": {"Authorization": "Bearer s3cr3t", "X-Env": "prod"}});
        let changes = changes_between(&before, &after);
        assert_eq!(
            changes["headers"]["to"],
            json!({"Authorization": REDACTED, "X-Env": REDACTED})
        );
        assert!(!changes.to_string().contains("s3cr3t"));
    }

    #[test]
    fn unchanged_fields_and_write_timestamps_are_left_out() {
        let before = json!({"url": "https://a", "updated_at": 1, "gone": 5});
        let after = json!({"url": "https://a", "updated_at": 2});
        assert_eq!(
            changes_between(&before, &after),
            json!({"gone": {"from": 5, "to": null}})
        );
    }

    #[test]
    fn a_new_endpoint_records_its_fields_with_the_secret_redacted() {
        let mut e = Endpoint::new("t_1", 1);
        e.url = "https://example.com/hook".into();
        e.secret = "whsec_c2VjcmV0".into();
        let changes = endpoint_changes(None, &e);
        assert_eq!(changes["url"], json!({"to": "https://example.com/hook"}));
        assert_eq!(changes["secret"], json!({"to": REDACTED}));
        assert!(!changes.to_string().contains("whsec_"));
    }

    #[test]
    fn a_urls_password_and_query_values_are_redacted_and_the_rest_kept() {
        let shown = redact_url("https://user:pa55@example.com/hook?token=t0k3n&env=prod");
        assert!(!shown.contains("pa55") && !shown.contains("t0k3n") && !shown.contains("prod"));
        assert!(shown.starts_with("https://user:"), "{shown}");
        assert!(shown.contains("example.com/hook?token=") && shown.contains("&env="));
        assert_eq!(
            redact_url("https://example.com/hook"),
            "https://example.com/hook"
        );
        assert_eq!(redact_url("not a url with secret"), REDACTED);
        let changes = changes_between(&json!({}), &json!({"url": "https://h/?k=v1"}));
        assert!(!changes.to_string().contains("v1"));
    }

    #[test]
    fn parameters_are_redacted_field_by_field() {
        let p = redacted(&json!({"secret": "x", "rate": 5, "key": null}));
        assert_eq!(p, json!({"secret": REDACTED, "rate": 5, "key": null}));
    }

    #[test]
    fn an_answer_status_gives_the_outcome_of_an_unrecorded_request() {
        assert_eq!(Outcome::of_status(404), Outcome::Refused);
        assert_eq!(Outcome::of_status(503), Outcome::Failed);
        assert_eq!(Outcome::of_status(204), Outcome::Applied);
        for o in ["applied", "started", "refused", "failed"] {
            assert_eq!(Outcome::parse(o).map(Outcome::as_str), Some(o));
        }
    }
}
