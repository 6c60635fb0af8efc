//! What the admin corrects in the event log: a quarantined body put back in the journal to be
//! split again (after a fix, or to retry) or deleted, an event deleted. Listing them is in
//! [`super::api`].

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use super::audit::Actor;
use super::error::ApiError;

fn admin_only(actor: &Actor) -> Result<(), ApiError> {
    match actor.caller.tenant() {
        None => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "only the admin key corrects the event log",
        )),
    }
}

/// `POST /api/v1/quarantine/{id}/reprocess`: the body goes back into the journal as it was
/// received; `202` with its new `journal_id`. If it still cannot be split it is quarantined
/// again, under a new id.
#[utoipa::path(post, path = "/api/v1/quarantine/{id}/reprocess", operation_id = "reprocess", tag = "operations", params(("id" = String, Path, pattern = r"^[0-9]+-[0-9]+(~[0-9]+)?$", description = "The quarantined body\'s id")), responses((status = 202, description = "Back in the journal", body = Object), crate::http::openapi::Errors))]
pub async fn reprocess(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor)?;
    let record = actor.record(&id, "", json!({"to": "journal"}));
    match state.store.requeue_quarantined(&id, &record).await? {
        Some(journal_id) => Ok(HttpResponse::Accepted().json(json!({ "journal_id": journal_id }))),
        None => Err(ApiError::NotFound("quarantined body")),
    }
}

/// `DELETE /api/v1/quarantine/{id}`.
#[utoipa::path(delete, path = "/api/v1/quarantine/{id}", operation_id = "corrections_delete", tag = "operations", params(("id" = String, Path, pattern = r"^[0-9]+-[0-9]+(~[0-9]+)?$", description = "The quarantined body\'s id")), responses((status = 204, description = "Deleted"), crate::http::openapi::Errors))]
pub async fn delete(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor)?;
    let record = actor.record(&id, "", json!({}));
    if state.store.delete_quarantined(&id, &record).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("quarantined body"))
    }
}

/// `DELETE /api/v1/events/{id}` (the event id, or the `webhook-id` its receivers got): the
/// event, its index entries and delivery states go for everyone; its dedup keys stay, so
/// Meta's resend of it is still recognised.
#[utoipa::path(delete, path = "/api/v1/events/{id}", operation_id = "delete_event", tag = "events", params(("id" = String, Path, pattern = r"^(evt_)?[0-9]+-[0-9]+(~[0-9]+)?$", description = "The event id (`~p`: made by partition p, see the README's Scale-out), or the `webhook-id` its receivers got")), responses((status = 204, description = "Deleted"), crate::http::openapi::Errors))]
pub async fn delete_event(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor)?;
    let id = crate::delivery::payload::event_id_of(&id).to_string();
    let record = actor.record(&id, "", json!({}));
    if state.store.delete_event(&id, &record).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("event"))
    }
}
