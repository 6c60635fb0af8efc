//! The read side of the management API (`/api/v1`): events with their delivery state,
//! statistics, quarantine and rejected requests. Events are visible to the admin and, for the
//! events routed to their endpoints, to tenants; the rest needs the admin key.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::auth::{Admin, Caller};
use super::error::ApiError;
use crate::meta::Platform;
use crate::store::{DeliveryKind, DeliveryState, EventQuery, overall_status};

pub(super) const DEFAULT_PAGE_SIZE: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    platform: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    account_id: Option<String>,
    /// Received at or after, Unix milliseconds.
    from: Option<u64>,
    /// Received at or before, Unix milliseconds.
    to: Option<u64>,
    cursor: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    cursor: Option<String>,
    limit: Option<usize>,
}

pub(super) fn page_size(limit: Option<usize>, max: usize) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE_SIZE.min(max)) {
        0 => Err(ApiError::BadRequest("limit must be at least 1".into())),
        n if n > max => Err(ApiError::BadRequest(format!("limit must be at most {max}"))),
        n => Ok(n),
    }
}

pub async fn list_events(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<EventsParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    if let Some(platform) = &p.platform
        && Platform::parse(platform).is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "platform must be one of whatsapp, messenger, page, instagram, other; got {platform:?}"
        )));
    }
    if let (Some(from), Some(to)) = (p.from, p.to)
        && from > to
    {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    let query = EventQuery {
        tenant_id: caller.tenant().map(str::to_string),
        platform: p.platform,
        event_type: p.event_type,
        account_id: p.account_id,
        from_ms: p.from,
        to_ms: p.to,
        cursor: p.cursor,
        limit: page_size(p.limit, state.settings.api.max_page_size)?,
    };
    Ok(HttpResponse::Ok().json(state.store.list_events(&query).await?))
}

/// An event with the state of its deliveries (a tenant sees only its endpoints' ones, and
/// only events routed to them).
pub async fn get_event(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // The event id, or the `webhook-id` a receiver got (`evt_<id>`).
    let id = crate::delivery::payload::event_id_of(&id).to_string();
    let event = state
        .store
        .get_event(&id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let recorded = state
        .store
        .delivery_states(DeliveryKind::Event, &id, &event.endpoints)
        .await?;
    // An endpoint the event was routed to without a recorded state has no attempt yet.
    let mut deliveries: Vec<DeliveryState> = event
        .endpoints
        .iter()
        .map(|ep| {
            recorded
                .iter()
                .find(|d| &d.endpoint_id == ep)
                .cloned()
                .unwrap_or_else(|| DeliveryState::pending(ep.clone()))
        })
        .collect();
    // Replays and manual retries of deliveries not in the routing record still show.
    for d in recorded {
        if !deliveries.iter().any(|x| x.endpoint_id == d.endpoint_id) {
            deliveries.push(d);
        }
    }
    let mut raw = state
        .store
        .delivery_states(DeliveryKind::Raw, &event.journal_id, &[])
        .await?;
    // Deliveries to endpoints deleted since are left out; a tenant sees its own only.
    let visible: Vec<String> = state
        .store
        .list_endpoints()
        .await?
        .into_iter()
        .filter(|l| caller.owns(&l.endpoint.tenant_id))
        .map(|l| l.endpoint.id)
        .collect();
    deliveries.retain(|d| visible.contains(&d.endpoint_id));
    raw.retain(|d| visible.contains(&d.endpoint_id));
    if caller.tenant().is_some() && deliveries.is_empty() && raw.is_empty() {
        return Err(ApiError::NotFound("event"));
    }
    let status = overall_status(&deliveries);
    let mut body = serde_json::to_value(&event).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    body["status"] = serde_json::json!(status);
    body["deliveries"] = serde_json::json!(deliveries);
    body["raw_deliveries"] = serde_json::json!(raw);
    Ok(HttpResponse::Ok().json(body))
}

pub async fn stats(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.stats().await?))
}

pub async fn list_quarantine(
    _: Admin,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = page_size(p.limit, state.settings.api.max_page_size)?;
    let page = state
        .store
        .list_quarantine(p.cursor.as_deref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

pub async fn list_rejected(
    _: Admin,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let limit = page_size(p.limit, state.settings.api.max_page_size)?;
    let page = state
        .store
        .list_rejected(p.cursor.as_deref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
