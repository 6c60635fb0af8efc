//! The event-type catalogue (`/api/v1/event-types`): what each type means, how its duplicates
//! are recognised, a Meta body carrying one and the event `data` a receiver gets from it.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::ApiError;
use crate::meta::catalogue::{CATALOGUE, EventType, UNKNOWN_FIELDS, find};

fn describe(t: &EventType) -> Value {
    let event = t.sample_event();
    let parse = |s: &str| serde_json::from_str::<Value>(s).unwrap_or(Value::Null);
    json!({
        "type": t.name,
        "platform": t.platform.as_str(),
        "field": (!t.field.is_empty()).then_some(t.field),
        "description": t.description,
        "dedup": {"by": t.dedup.kind(), "rule": t.dedup.rule()},
        "reference": t.reference,
        "sample": parse(t.sample),
        "sample_data": event.as_ref().map_or(Value::Null, |e| parse(&e.data)),
    })
}

/// Every known type; any key may read them.
#[utoipa::path(get, path = "/api/v1/event-types", operation_id = "event_types_list", tag = "events", responses((status = 200, description = "The catalogue", body = Object), crate::http::openapi::Errors))]
pub async fn list(_: Caller) -> HttpResponse {
    let items: Vec<Value> = CATALOGUE.iter().map(describe).collect();
    HttpResponse::Ok().json(json!({
        "items": items,
        "patterns": ["*", "whatsapp.*", "messenger.*", "page.*", "instagram.*", "other.*"],
        "unknown_fields": UNKNOWN_FIELDS,
    }))
}

/// One type, by name.
#[utoipa::path(get, path = "/api/v1/event-types/{name}", operation_id = "event_types_get", tag = "events", params(("name" = String, Path, description = "An event type, e.g. `whatsapp.messages`")), responses((status = 200, description = "One type of the catalogue", body = Object), crate::http::openapi::Errors))]
pub async fn get(_: Caller, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let t = find(&name).ok_or(ApiError::NotFound("event type"))?;
    Ok(HttpResponse::Ok().json(describe(t)))
}
