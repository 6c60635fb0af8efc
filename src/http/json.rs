//! JSON request bodies of the management API. Unlike `web::Json`, a body that is valid JSON
//! but has a wrong type or an unknown key is a 422 naming the field it concerns.

use std::borrow::Cow;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::delivery::endpoint::Invalid;

/// A JSON body of type `T`; take it as a handler argument.
pub struct ApiJson<T>(pub T);

impl<T> ApiJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<ApiJson<T>, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let body = body
                .await
                .map_err(|e| ApiError::BadRequest(format!("cannot read the body: {e}")))?;
            parse(&body).map(ApiJson)
        })
    }
}

/// Reads `body` as `T`: broken JSON is a 400; a wrong type, value or key is a 422 naming the
/// top-level field it is in.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let err = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => {
            // Trailing bytes after the value are broken JSON too.
            de.end()
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
            return Ok(value);
        }
        Err(e) => e,
    };
    let inner = err.inner();
    if inner.is_syntax() || inner.is_eof() {
        return Err(ApiError::BadRequest(format!("invalid JSON body: {inner}")));
    }
    let problem = inner.to_string();
    let field = err
        .path()
        .iter()
        .find_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            _ => None,
        })
        .or_else(|| unknown_field(&problem))
        .map(Cow::Owned)
        .unwrap_or(Cow::Borrowed("body"));
    Err(ApiError::Invalid(Invalid { field, problem }))
}

/// The key serde names in "unknown field `x`, expected …" (reported at the object's path).
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split_once('`')?.0.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::endpoint::EndpointInput;

    fn field_of(json: &str) -> String {
        match parse::<EndpointInput>(json.as_bytes()) {
            Err(ApiError::Invalid(i)) => i.field.into_owned(),
            Err(other) => panic!("{json}: expected a 422, got {other}"),
            Ok(_) => panic!("{json}: accepted"),
        }
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        assert_eq!(field_of(r#"{"event_types":[5]}"#), "event_types");
        assert_eq!(field_of(r#"{"event_types":"whatsapp.*"}"#), "event_types");
        assert_eq!(field_of(r#"{"rate_limit":-1}"#), "rate_limit");
        assert_eq!(field_of(r#"{"max_in_flight":"x"}"#), "max_in_flight");
        assert_eq!(field_of(r#"{"headers":{"X":1}}"#), "headers");
    }

    #[test]
    fn an_unknown_key_is_named() {
        assert_eq!(field_of(r#"{"urll":"https://x"}"#), "urll");
    }

    #[test]
    fn broken_json_is_a_bad_request() {
        assert!(matches!(
            parse::<EndpointInput>(b"{\"url\":"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse::<EndpointInput>(b"{} trailing"),
            Err(ApiError::BadRequest(_))
        ));
    }
}
