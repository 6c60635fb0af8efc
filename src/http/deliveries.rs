//! Delivery operations (`/api/v1`): overall delivery statistics, dead
//! letters and their replay, retrying one delivery now, deleting old attempt logs.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::api::page_size;
use super::audit::{Actor, Started};
use super::auth::Caller;
use super::endpoints::{PeriodParams, owned, period};
use super::error::ApiError;
use super::json::ApiJson;
use crate::delivery::stats;
use crate::metrics as m;
use crate::store::{ALL_ENDPOINTS, Backend, DeadQuery, DeliveryKind};
use crate::time::unix_ms;

/// The endpoints a caller may act on: `None` for the admin (all).
async fn scope(state: &AppState, caller: &Caller) -> Result<Option<Vec<String>>, ApiError> {
    let Some(tenant) = caller.tenant() else {
        return Ok(None);
    };
    Ok(Some(
        state
            .store
            .list_endpoints()
            .await?
            .into_iter()
            .filter(|l| l.endpoint.tenant_id == tenant)
            .map(|l| l.endpoint.id)
            .collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/deliveries/stats", operation_id = "overall_stats", tag = "deliveries", params(super::endpoints::PeriodParams), responses((status = 200, description = "Delivery statistics over the caller's endpoints", body = Object), crate::http::openapi::Errors))]
pub async fn overall_stats(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<PeriodParams>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = period(&params, state.settings.delivery.log_retention)?;
    let buckets = match scope(&state, &caller).await? {
        None => state.store.stats_buckets(ALL_ENDPOINTS, from, to).await?,
        Some(endpoints) => {
            let mut all = Vec::new();
            for ep in endpoints {
                all.extend(state.store.stats_buckets(&ep, from, to).await?);
            }
            all
        }
    };
    Ok(HttpResponse::Ok().json(json!({
        "from": from,
        "to": to,
        "stats": stats::summarize(&buckets),
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadParams {
    endpoint_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Dead at or after / at or before, Unix ms.
    from: Option<u64>,
    to: Option<u64>,
    /// The previous page\'s `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Items per page (default 50, at most `api.max_page_size`).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// The dead-letter filter a caller asked for, narrowed to what it may see.
async fn dead_query(
    state: &AppState,
    caller: &Caller,
    endpoint_id: Option<String>,
    event_type: Option<String>,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<DeadQuery, ApiError> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    let endpoint_ids = match endpoint_id {
        Some(ep) => {
            owned(state, caller, &ep).await?;
            Some(vec![ep])
        }
        None => scope(state, caller).await?,
    };
    Ok(DeadQuery {
        endpoint_ids,
        event_type,
        from_ms: from,
        to_ms: to,
        cursor: None,
        limit: 0,
    })
}

#[utoipa::path(get, path = "/api/v1/dead", operation_id = "list_dead", tag = "deliveries", params(DeadParams), responses((status = 200, description = "Dead deliveries", body = crate::http::openapi::PageOf<crate::model::DeadDelivery>), crate::http::openapi::Errors))]
pub async fn list_dead(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<DeadParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let mut q = dead_query(&state, &caller, p.endpoint_id, p.event_type, p.from, p.to).await?;
    q.cursor = p.cursor;
    q.limit = page_size(p.limit, state.settings.api.max_page_size)?;
    Ok(HttpResponse::Ok().json(state.store.list_dead(&q).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayInput {
    endpoint_id: Option<String>,
    #[serde(rename = "type")]
    event_type: Option<String>,
    from: Option<u64>,
    to: Option<u64>,
    /// Count what would be replayed, change nothing.
    #[serde(default)]
    dry_run: bool,
    /// Deliveries per second (at most `delivery.replay_rate`).
    rate: Option<u32>,
}

/// Dead letters matched by one replay request at most.
const REPLAY_MAX: usize = 1_000_000;

/// Every dead delivery matching `q`, oldest first within the newest-first pages.
async fn matching_dead(store: &dyn Backend, mut q: DeadQuery) -> Result<Vec<String>, ApiError> {
    q.limit = 1000;
    let mut ids = Vec::new();
    loop {
        let page = store.list_dead(&q).await?;
        ids.extend(page.items.into_iter().map(|d| d.id));
        match page.next_cursor {
            Some(c) if ids.len() < REPLAY_MAX => q.cursor = Some(c),
            _ => break,
        }
    }
    ids.reverse();
    Ok(ids)
}

/// Replays dead deliveries by filter, at a bounded rate, in the background. `dry_run` counts.
/// A replay is recorded before it starts (no record, no replay) and again when it ends.
#[utoipa::path(post, path = "/api/v1/dead/replay", operation_id = "replay", tag = "deliveries", request_body = ReplayInput, responses((status = 200, description = "A dry run's count", body = Object), (status = 202, description = "The replay started", body = Object), crate::http::openapi::Errors))]
pub async fn replay(
    actor: Actor,
    state: web::Data<AppState>,
    input: ApiJson<ReplayInput>,
) -> Result<HttpResponse, ApiError> {
    let caller = &actor.caller;
    let r = input.into_inner();
    let max_rate = state.settings.delivery.replay_rate;
    let rate = match r.rate {
        Some(0) => return Err(ApiError::invalid("rate", "at least 1 per second")),
        Some(n) => n.min(max_rate),
        None => max_rate,
    };
    let mut filter = json!({
        "endpoint_id": r.endpoint_id,
        "type": r.event_type,
        "from": r.from,
        "to": r.to,
        "rate": rate,
    });
    // The tenant the replay concerns: the caller's own, or the named endpoint's.
    let tenant = match (&r.endpoint_id, caller.tenant()) {
        (_, Some(own)) => own.to_string(),
        (Some(ep), None) => state
            .store
            .get_endpoint(ep)
            .await?
            .map(|l| l.endpoint.tenant_id)
            .unwrap_or_default(),
        (None, None) => String::new(),
    };
    let q = dead_query(&state, caller, r.endpoint_id, r.event_type, r.from, r.to).await?;
    let ids = matching_dead(state.store.as_ref(), q).await?;
    if r.dry_run {
        return Ok(HttpResponse::Ok().json(json!({ "matched": ids.len(), "dry_run": true })));
    }
    let matched = ids.len();
    filter["matched"] = json!(matched);
    let started = actor
        .start(state.store.as_ref(), "", &tenant, filter)
        .await?;
    let store = state.store.clone();
    actix_web::rt::spawn(replay_at_rate(store, ids, rate, started));
    Ok(HttpResponse::Accepted().json(json!({
        "matched": matched,
        "rate": rate,
        "estimated_seconds": matched.div_ceil(rate.max(1) as usize),
    })))
}

/// Puts dead deliveries back in slices of a tenth of a second's worth, and records the end
/// of the replay `started` recorded.
async fn replay_at_rate(
    store: std::sync::Arc<dyn Backend>,
    ids: Vec<String>,
    rate: u32,
    started: Started,
) {
    let slice = (rate as usize / 10).max(1);
    let pause = Duration::from_secs_f64(slice as f64 / rate as f64);
    let mut replayed = 0;
    for chunk in ids.chunks(slice) {
        let mut backoff = Duration::from_millis(200);
        loop {
            match store.requeue_dead(chunk).await {
                Ok(n) => {
                    replayed += n;
                    metrics::counter!(m::REPLAYED).increment(n as u64);
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replay paused: cannot reach the store");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
    tracing::info!(replayed, "replay finished");
    started
        .finish(store.as_ref(), json!({ "replayed": replayed }))
        .await;
}

/// Attempts one event's delivery to one endpoint again now.
#[utoipa::path(post, path = "/api/v1/events/{id}/deliveries/{endpoint_id}/retry", operation_id = "retry_one", tag = "deliveries", params(("id" = String, Path, pattern = r"^(evt_)?[0-9]+-[0-9]+(~[0-9]+)?$", description = "The event id (`~p`: made by partition p, see the README's Scale-out), or the `webhook-id` its receivers got"), ("endpoint_id" = String, Path, description = "An endpoint id")), responses((status = 202, description = "The attempt is queued", body = Object), crate::http::openapi::Errors))]
pub async fn retry_one(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (event_id, endpoint_id) = path.into_inner();
    let event_id = crate::delivery::payload::event_id_of(&event_id).to_string();
    let endpoint = owned(&state, &actor.caller, &endpoint_id).await?;
    let event = state
        .store
        .get_event(&event_id)
        .await?
        .ok_or(ApiError::NotFound("event"))?;
    let queued = state
        .store
        .retry_delivery(
            DeliveryKind::Event,
            &event_id,
            &endpoint_id,
            &event.event_type,
            &actor.record(
                &endpoint_id,
                &endpoint.endpoint.tenant_id,
                json!({ "event_id": event_id }),
            ),
        )
        .await?;
    if !queued {
        return Err(ApiError::NotFound("delivery"));
    }
    Ok(HttpResponse::Accepted().json(json!({ "queued": true })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PurgeParams {
    /// Delete attempt logs older than this: a duration such as `3d`, `12h`, `90m`.
    older_than: String,
}

/// Deletes old attempt logs. Recorded before (no record, nothing deleted) and after, with
/// how many went: the deletion is not one atomic step.
#[utoipa::path(delete, path = "/api/v1/attempts", operation_id = "purge_attempts", tag = "deliveries", params(PurgeParams), responses((status = 200, description = "What was deleted", body = Object), crate::http::openapi::Errors))]
pub async fn purge_attempts(
    actor: Actor,
    state: web::Data<AppState>,
    params: web::Query<PurgeParams>,
) -> Result<HttpResponse, ApiError> {
    let age = humantime::parse_duration(&params.older_than)
        .map_err(|e| ApiError::BadRequest(format!("older_than: {e}")))?;
    let endpoints = match scope(&state, &actor.caller).await? {
        Some(own) => own,
        None => state
            .store
            .list_endpoints()
            .await?
            .into_iter()
            .map(|l| l.endpoint.id)
            .collect(),
    };
    let before = unix_ms().saturating_sub(age.as_millis() as u64);
    let changes = json!({ "older_than": params.older_than, "before": before });
    let store = state.store.as_ref();
    let started = actor.start(store, "", actor.own_tenant(), changes).await?;
    let deleted = store.purge_attempt_logs(&endpoints, before).await?;
    started.finish(store, json!({ "deleted": deleted })).await;
    Ok(HttpResponse::Ok().json(json!({ "deleted": deleted, "before": before })))
}
