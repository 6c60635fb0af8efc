//! The read side of the management API (`/api/v1`): events with their delivery state,
//! statistics, quarantine and rejected requests. Events are visible to the admin and, for the
//! events routed to their endpoints, to tenants; the rest needs the admin key.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use super::AppState;
use super::auth::{Admin, Caller};
use super::error::ApiError;
use crate::meta::Platform;
use crate::store::{
    DeliveryKind, DeliveryState, DeliveryStatus, EventQuery, Page, StoredEvent, overall_status,
};

pub(super) const DEFAULT_PAGE_SIZE: usize = 50;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    #[param(pattern = "^(whatsapp|messenger|page|instagram|other)$")]
    platform: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    account_id: Option<String>,
    /// Received at or after, Unix milliseconds.
    from: Option<u64>,
    /// Received at or before, Unix milliseconds.
    to: Option<u64>,
    /// Overall delivery status: delivered, pending, delivering, failed, dead, stale or
    /// unrouted.
    #[param(pattern = "^(delivered|pending|delivering|failed|dead|unrouted)$")]
    status: Option<String>,
    /// The previous page\'s `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Items per page (default 50, at most `api.max_page_size`).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The previous page\'s `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Items per page (default 50, at most `api.max_page_size`).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

pub(super) fn page_size(limit: Option<usize>, max: usize) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE_SIZE.min(max)) {
        0 => Err(ApiError::BadRequest("limit must be at least 1".into())),
        n if n > max => Err(ApiError::BadRequest(format!("limit must be at most {max}"))),
        n => Ok(n),
    }
}

#[utoipa::path(get, path = "/api/v1/events", operation_id = "list_events", tag = "events", params(EventsParams), responses((status = 200, description = "Events, newest first", body = crate::http::openapi::PageOf<crate::store::StoredEvent>), crate::http::openapi::Errors))]
pub async fn list_events(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<EventsParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    check_platform(p.platform.as_deref())?;
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
    match p.status {
        None => Ok(HttpResponse::Ok().json(state.store.list_events(&query).await?)),
        Some(status) => {
            let wanted = status_filter(&status)?;
            let page = events_by_status(&state, &caller, query, wanted).await?;
            Ok(HttpResponse::Ok().json(page))
        }
    }
}

/// The endpoints whose deliveries `caller` sees: the admin all that exist, a tenant its own.
/// A `platform` filter names one of the platforms.
pub(super) fn check_platform(platform: Option<&str>) -> Result<(), ApiError> {
    match platform {
        Some(p) if Platform::parse(p).is_none() => Err(ApiError::BadParameter(
            "platform",
            format!("one of whatsapp, messenger, page, instagram, other; got {p:?}"),
        )),
        _ => Ok(()),
    }
}

pub(super) async fn visible_endpoints(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<String>, ApiError> {
    Ok(state
        .store
        .list_endpoints()
        .await?
        .into_iter()
        .filter(|l| caller.owns(&l.endpoint.tenant_id))
        .map(|l| l.endpoint.id)
        .collect())
}

/// The state of each delivery of `event` to a visible endpoint: recorded, or pending for an
/// endpoint it was routed to that has no attempt yet; replays and manual retries of
/// deliveries not in the routing record too.
pub(super) async fn event_deliveries(
    state: &AppState,
    event: &StoredEvent,
    visible: &[String],
) -> Result<Vec<DeliveryState>, ApiError> {
    let recorded = state
        .store
        .delivery_states(DeliveryKind::Event, &event.id, &event.endpoints)
        .await?;
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
    for d in recorded {
        if !deliveries.iter().any(|x| x.endpoint_id == d.endpoint_id) {
            deliveries.push(d);
        }
    }
    deliveries.retain(|d| visible.contains(&d.endpoint_id));
    Ok(deliveries)
}

/// An event with the state of its deliveries (a tenant sees only its endpoints' ones, and
/// only events routed to them).
#[utoipa::path(get, path = "/api/v1/events/{id}", operation_id = "get_event", tag = "events", params(("id" = String, Path, pattern = r"^(evt_)?[0-9]+-[0-9]+(~[0-9]+)?$", description = "The event id (`~p`: made by partition p, see the README's Scale-out), or the `webhook-id` its receivers got")), responses((status = 200, description = "The event with its deliveries", body = crate::http::openapi::EventDetail), crate::http::openapi::Errors))]
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
    // Deliveries to endpoints deleted since are left out; a tenant sees its own only.
    let visible = visible_endpoints(&state, &caller).await?;
    let deliveries = event_deliveries(&state, &event, &visible).await?;
    let mut raw = state
        .store
        .delivery_states(DeliveryKind::Raw, &event.journal_id, &[])
        .await?;
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

/// Most events one page filtered by delivery status reads; past it the page ends short with a
/// cursor, like every other listing.
const STATUS_SCAN_MAX: usize = 1000;

/// `status` as a filter: a delivery status, or `unrouted` (no delivery the caller sees).
fn status_filter(status: &str) -> Result<Option<DeliveryStatus>, ApiError> {
    match status {
        "unrouted" => Ok(None),
        s => serde_json::from_value(serde_json::json!(s))
            .map(Some)
            .map_err(|_| {
                ApiError::BadParameter(
                    "status",
                    "one of delivered, pending, delivering, failed, dead, stale, unrouted".into(),
                )
            }),
    }
}

/// A page of the events whose overall delivery status is `wanted`, read through the store's
/// pages of `query`.
async fn events_by_status(
    state: &AppState,
    caller: &Caller,
    mut query: EventQuery,
    wanted: Option<DeliveryStatus>,
) -> Result<Page<StoredEvent>, ApiError> {
    let visible = visible_endpoints(state, caller).await?;
    let limit = query.limit;
    let (mut items, mut scanned) = (Vec::new(), 0);
    loop {
        let page = state.store.list_events(&query).await?;
        for event in page.items {
            scanned += 1;
            let id = event.id.clone();
            let deliveries = event_deliveries(state, &event, &visible).await?;
            if overall_status(&deliveries) == wanted {
                items.push(event);
                if items.len() == limit {
                    return Ok(Page {
                        items,
                        next_cursor: Some(id),
                    });
                }
            }
        }
        match page.next_cursor {
            Some(cursor) if scanned < STATUS_SCAN_MAX => query.cursor = Some(cursor),
            next_cursor => return Ok(Page { items, next_cursor }),
        }
    }
}

/// Counters since the start, and the deliveries by where they stand now.
#[utoipa::path(get, path = "/api/v1/stats", operation_id = "stats", tag = "operations", responses((status = 200, description = "Counters and where deliveries stand", body = Object), crate::http::openapi::Errors))]
pub async fn stats(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut body = serde_json::to_value(state.store.stats().await?)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let g = state.store.delivery_gauges(crate::time::unix_ms()).await?;
    body["deliveries"] = serde_json::json!({
        "queued": g.lag,
        "in_flight": g.pending,
        "retrying": g.scheduled,
        "dead": g.dead,
    });
    let j = state.store.stream_gauges().await?;
    body["journal"] = serde_json::json!({
        "unread": j.inbound_lag,
        "unacknowledged": j.inbound_pending,
    });
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /api/v1/me`: who the key is (`admin`, or a tenant with its id and accounts) and the
/// configured sources, for a client deciding what to offer.
#[utoipa::path(get, path = "/api/v1/me", operation_id = "me", tag = "operations",
    responses((status = 200, description = "The caller", body = Object), crate::http::openapi::Errors))]
pub async fn me(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut sources: Vec<&str> = state.sources.keys().map(String::as_str).collect();
    sources.sort_unstable();
    let body = match caller.tenant() {
        None => serde_json::json!({"role": "admin", "sources": sources}),
        Some(tenant) => {
            let owners = state.store.account_owners().await?;
            let mut accounts: Vec<&str> = owners
                .iter()
                .filter(|(_, t)| t.as_str() == tenant)
                .map(|(a, _)| a.as_str())
                .collect();
            accounts.sort_unstable();
            let name = state.store.get_tenant(tenant).await?.map(|t| t.name);
            serde_json::json!({"role": "tenant", "tenant_id": tenant, "name": name,
                "account_ids": accounts, "sources": sources})
        }
    };
    Ok(HttpResponse::Ok().json(body))
}

#[utoipa::path(get, path = "/api/v1/quarantine", operation_id = "list_quarantine", tag = "operations", params(PageParams), responses((status = 200, description = "Bodies that could not be split", body = crate::http::openapi::PageOf<crate::store::QuarantinedBody>), crate::http::openapi::Errors))]
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

#[utoipa::path(get, path = "/api/v1/rejected", operation_id = "list_rejected", tag = "operations", params(PageParams), responses((status = 200, description = "Requests refused for their signature", body = crate::http::openapi::PageOf<crate::store::RejectedRequest>), crate::http::openapi::Errors))]
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
