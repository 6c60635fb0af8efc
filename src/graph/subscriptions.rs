//! The shapes of subscription calls: which objects and fields may be asked for, the callback
//! URL of a source, and an app subscription as Meta lists it.

use serde::Serialize;
use serde_json::Value;

/// The objects whose webhooks hookd receives.
pub const OBJECTS: &[&str] = &["whatsapp_business_account", "page", "instagram"];

/// A Graph node id: digits only, so one can go into a call's path as it is.
pub fn is_node_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit())
}

/// `fields` joined with commas, as Graph takes them; why not when a field is malformed.
pub fn field_list(fields: &[String]) -> Result<String, String> {
    if fields.is_empty() || fields.len() > 100 {
        return Err("between 1 and 100 webhook field names".into());
    }
    for f in fields {
        let valid = !f.is_empty()
            && f.len() <= 64
            && f.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(format!("{f:?} is not a webhook field name (a-z, 0-9, _)"));
        }
    }
    Ok(fields.join(","))
}

/// The callback URL Meta should post a source's webhooks to.
pub fn callback_url(public_url: &str, source: &str) -> Option<String> {
    (!public_url.is_empty())
        .then(|| format!("{}/webhooks/{source}", public_url.trim_end_matches('/')))
}

/// An http(s) URL Meta can be given as a callback (at most 200 characters for overrides).
pub fn valid_callback(url: &str) -> bool {
    url.len() <= 200
        && url::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
}

/// One field of an app subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscribedField {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// An app's subscription to one object, from `GET /{app-id}/subscriptions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub object: String,
    pub callback_url: String,
    pub active: bool,
    pub fields: Vec<SubscribedField>,
}

impl Subscription {
    pub fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.clone()).collect()
    }
}

/// The subscriptions of a `GET /{app-id}/subscriptions` answer (`{"data": [...]}`); fields come
/// as objects (`{"name", "version"}`) or, from older versions, as names.
pub fn parse_subscriptions(answer: &Value) -> Vec<Subscription> {
    let Some(data) = answer.get("data").and_then(Value::as_array) else {
        return Vec::new();
    };
    data.iter()
        .map(|s| {
            let text = |k: &str| {
                s.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let fields = s
                .get("fields")
                .and_then(Value::as_array)
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| match f {
                            Value::String(name) => Some(SubscribedField {
                                name: name.clone(),
                                version: None,
                            }),
                            Value::Object(o) => Some(SubscribedField {
                                name: o.get("name")?.as_str()?.to_string(),
                                version: o
                                    .get("version")
                                    .and_then(Value::as_str)
                                    .map(str::to_string),
                            }),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            Subscription {
                object: text("object"),
                callback_url: text("callback_url"),
                active: s.get("active").and_then(Value::as_bool).unwrap_or(false),
                fields,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subscriptions_are_read_with_fields_as_objects_or_names() {
        let answer = json!({"data": [
            {"object": "page", "callback_url": "https://h.example/webhooks/a", "active": true,
             "fields": [{"name": "feed", "version": "v25.0"}, "messages"]}
        ]});
        let subs = parse_subscriptions(&answer);
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].field_names(), ["feed", "messages"]);
        assert_eq!(subs[0].fields[0].version.as_deref(), Some("v25.0"));
        assert!(subs[0].active);
    }

    #[test]
    fn field_lists_refuse_what_graph_would_misread() {
        assert_eq!(
            field_list(&["feed".into(), "messages".into()]),
            Ok("feed,messages".into())
        );
        assert!(field_list(&[]).is_err());
        assert!(field_list(&["feed,messages".into()]).is_err());
        assert!(field_list(&["Feed".into()]).is_err());
    }

    #[test]
    fn node_ids_are_digits_and_callbacks_are_built_from_the_public_url() {
        assert!(is_node_id("102290129340398"));
        assert!(!is_node_id("1/../me"));
        assert_eq!(
            callback_url("https://h.example/", "acme").as_deref(),
            Some("https://h.example/webhooks/acme")
        );
        assert_eq!(callback_url("", "acme"), None);
        assert!(valid_callback("https://h.example/webhooks/acme"));
        assert!(!valid_callback("ftp://h.example/x"));
    }
}
