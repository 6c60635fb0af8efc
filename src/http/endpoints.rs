//! Subscriber endpoints (`/api/v1/endpoints`): create, read, change, delete, rotate the
//! secret, send a test event, read the attempt log and statistics. A tenant sees only its own;
//! another tenant's endpoint is "not found".

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::api::page_size;
use super::audit::Actor;
use super::auth::Caller;
use super::error::ApiError;
use super::json::ApiJson;
use crate::delivery::endpoint::{EndpointInput, UrlRules, apply};
use crate::delivery::payload::{OutboundEvent, event_body, webhook_id};
use crate::delivery::request::signed_request;
use crate::delivery::{signing, stats};
use crate::meta::catalogue;
use crate::model::audit::{endpoint_changes, redacted};
use crate::model::{Endpoint, EndpointHealth, LiveEndpoint, PreviousSecret};
use crate::store::DisabledByHookd;
use crate::time::unix_ms;

/// An endpoint as the API shows it: everything but its secrets, plus its health.
#[derive(Serialize)]
struct EndpointView<'a> {
    id: &'a str,
    /// `null` for an endpoint the admin owns.
    tenant_id: Option<&'a str>,
    url: &'a str,
    description: &'a str,
    event_types: &'a [String],
    account_ids: &'a [String],
    enabled: bool,
    /// Enabled and not disabled by hookd.
    active: bool,
    rate_limit: Option<u32>,
    max_in_flight: Option<u32>,
    timeout_ms: Option<u64>,
    retry_schedule_ms: &'a Option<Vec<u64>>,
    headers: &'a BTreeMap<String, String>,
    raw: bool,
    ordering: crate::model::Ordering,
    created_at: u64,
    updated_at: u64,
    #[serde(flatten)]
    health: &'a EndpointHealth,
    /// Only when it was just created or set.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
}

fn view<'a>(live: &'a LiveEndpoint, with_secret: bool) -> EndpointView<'a> {
    let e = &live.endpoint;
    EndpointView {
        id: &e.id,
        tenant_id: Some(e.tenant_id.as_str()).filter(|t| !t.is_empty()),
        url: &e.url,
        description: &e.description,
        event_types: &e.event_types,
        account_ids: &e.account_ids,
        enabled: e.enabled,
        active: live.active(),
        rate_limit: e.rate_limit,
        max_in_flight: e.max_in_flight,
        timeout_ms: e.timeout_ms,
        retry_schedule_ms: &e.retry_schedule_ms,
        headers: &e.headers,
        raw: e.raw,
        ordering: e.ordering,
        created_at: e.created_at,
        updated_at: e.updated_at,
        health: &live.health,
        secret: with_secret.then_some(e.secret.as_str()),
    }
}

fn rules(state: &AppState) -> UrlRules<'_> {
    UrlRules {
        https_only: state.settings.delivery.ssrf.https_only,
        guard: &state.address_policy,
    }
}

/// The endpoint, if the caller may see it.
pub(super) async fn owned(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<LiveEndpoint, ApiError> {
    match state.store.get_endpoint(id).await? {
        Some(live) if caller.owns(&live.endpoint.tenant_id) => Ok(live),
        _ => Err(ApiError::NotFound("endpoint")),
    }
}

/// Applies an endpoint change to this instance's routing at once (others poll for it).
pub(super) async fn refresh(state: &AppState) {
    if let Err(e) = state.engine.refresh_routes().await {
        tracing::warn!(error = %e, "endpoint saved; routing picks it up at the next refresh");
    }
}

#[utoipa::path(post, path = "/api/v1/endpoints", operation_id = "endpoints_create", tag = "endpoints", request_body = crate::http::openapi::NewEndpoint, responses((status = 201, description = "The endpoint, with its secret", body = Object), crate::http::openapi::Errors))]
pub async fn create(
    actor: Actor,
    state: web::Data<AppState>,
    input: ApiJson<EndpointInput>,
) -> Result<HttpResponse, ApiError> {
    let mut input = input.into_inner();
    let tenant_id = match (&actor.caller, input.tenant_id.take()) {
        (Caller::Tenant(own), None) => own.clone(),
        (Caller::Tenant(own), Some(t)) if &t == own => t,
        (Caller::Tenant(_), Some(_)) => {
            return Err(ApiError::invalid(
                "tenant_id",
                "a tenant key creates its own endpoints",
            ));
        }
        (Caller::Admin, Some(t)) => t,
        // The admin's own endpoint: it may receive every account's events.
        (Caller::Admin, None) => String::new(),
    };
    if !tenant_id.is_empty() && state.store.get_tenant(&tenant_id).await?.is_none() {
        return Err(ApiError::invalid(
            "tenant_id",
            format!("no tenant {tenant_id}"),
        ));
    }
    if input.url.is_none() {
        return Err(ApiError::invalid("url", "required"));
    }
    if input.event_types.is_none() {
        return Err(ApiError::invalid(
            "event_types",
            "required, e.g. [\"whatsapp.*\"]",
        ));
    }
    let mut endpoint = Endpoint::new(&tenant_id, unix_ms());
    apply(&mut endpoint, input, &rules(&state))?;
    let audit = actor.record(&endpoint.id, &tenant_id, endpoint_changes(None, &endpoint));
    state
        .store
        .put_endpoint(&endpoint, DisabledByHookd::Keep, &audit)
        .await?;
    refresh(&state).await;
    let live = LiveEndpoint {
        endpoint,
        health: EndpointHealth::default(),
    };
    Ok(HttpResponse::Created().json(view(&live, true)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    tenant_id: Option<String>,
    /// The previous page\'s `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Items per page (default 50, at most `api.max_page_size`).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/endpoints", operation_id = "endpoints_list", tag = "endpoints", params(ListParams), responses((status = 200, description = "The caller's endpoints", body = Object), crate::http::openapi::Errors))]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let params = params.into_inner();
    let limit = super::api::page_size(params.limit, state.settings.api.max_page_size)?;
    let wanted = params.tenant_id;
    let visible: Vec<LiveEndpoint> = state
        .store
        .list_endpoints()
        .await?
        .into_iter()
        .filter(|l| caller.owns(&l.endpoint.tenant_id))
        .filter(|l| wanted.as_ref().is_none_or(|t| &l.endpoint.tenant_id == t))
        .collect();
    let page = crate::store::Page::of(visible, |l| &l.endpoint.id, params.cursor.as_deref(), limit)
        .ok_or_else(|| ApiError::BadParameter("cursor", "no endpoint has this id".into()))?;
    Ok(HttpResponse::Ok().json(crate::store::Page {
        items: page
            .items
            .iter()
            .map(|l| view(l, false))
            .collect::<Vec<_>>(),
        next_cursor: page.next_cursor.clone(),
    }))
}

#[utoipa::path(get, path = "/api/v1/endpoints/{id}", operation_id = "endpoints_get", tag = "endpoints", params(("id" = String, Path, description = "Its id")), responses((status = 200, description = "The endpoint", body = Object), crate::http::openapi::Errors))]
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let live = owned(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(view(&live, false)))
}

#[utoipa::path(patch, path = "/api/v1/endpoints/{id}", operation_id = "update", tag = "endpoints", params(("id" = String, Path, description = "Its id")), request_body = EndpointInput, responses((status = 200, description = "The endpoint", body = Object), crate::http::openapi::Errors))]
pub async fn update(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    input: ApiJson<EndpointInput>,
) -> Result<HttpResponse, ApiError> {
    let mut live = owned(&state, &actor.caller, &id).await?;
    let before = live.endpoint.clone();
    let input = input.into_inner();
    // The owner as read back (`null` for the admin's own) is no change.
    if input
        .tenant_id
        .as_ref()
        .is_some_and(|t| t != &live.endpoint.tenant_id)
    {
        return Err(ApiError::invalid(
            "tenant_id",
            "an endpoint cannot change tenant",
        ));
    }
    if input.id.as_ref().is_some_and(|i| i != &live.endpoint.id) {
        return Err(ApiError::invalid("id", "an endpoint cannot change id"));
    }
    if input.secret.is_some() {
        return Err(ApiError::invalid(
            "secret",
            "change it with POST /api/v1/endpoints/{id}/secret/rotate",
        ));
    }
    // Turning it on clears what hookd's own disabling set, unless the input is the endpoint
    // as read back (still naming the reason hookd disabled it).
    let re_enable = input.enabled == Some(true) && input.disabled_reason.is_none();
    apply(&mut live.endpoint, input, &rules(&state))?;
    live.endpoint.updated_at = unix_ms().max(live.endpoint.updated_at + 1);
    let mut changes = endpoint_changes(Some(&before), &live.endpoint);
    let disabled = match live.health.disabled_reason.take() {
        Some(reason) if re_enable => {
            changes["disabled_by_hookd"] = json!({ "from": reason, "to": null });
            live.health.disabled_at = None;
            live.health.failing_since = None;
            DisabledByHookd::Clear
        }
        reason => {
            live.health.disabled_reason = reason;
            DisabledByHookd::Keep
        }
    };
    let audit = actor.record(&live.endpoint.id, &live.endpoint.tenant_id, changes);
    state
        .store
        .put_endpoint(&live.endpoint, disabled, &audit)
        .await?;
    refresh(&state).await;
    Ok(HttpResponse::Ok().json(view(&live, false)))
}

#[utoipa::path(delete, path = "/api/v1/endpoints/{id}", operation_id = "endpoints_delete", tag = "endpoints", params(("id" = String, Path, description = "Its id")), responses((status = 204, description = "Deleted"), crate::http::openapi::Errors))]
pub async fn delete(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let live = owned(&state, &actor.caller, &id).await?;
    let audit = actor.record(&id, &live.endpoint.tenant_id, serde_json::Value::Null);
    if !state.store.delete_endpoint(&id, &audit).await? {
        return Err(ApiError::NotFound("endpoint"));
    }
    refresh(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Shows the current secret. Who saw it is recorded first: no record, no secret.
#[utoipa::path(get, path = "/api/v1/endpoints/{id}/secret", operation_id = "secret", tag = "endpoints", params(("id" = String, Path, description = "Its id")), responses((status = 200, description = "The current secret", body = Object), crate::http::openapi::Errors))]
pub async fn secret(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let live = owned(&state, &actor.caller, &id).await?;
    let audit = actor.record(&id, &live.endpoint.tenant_id, serde_json::Value::Null);
    state.store.record_audit(&audit).await?;
    Ok(HttpResponse::Ok().json(json!({ "secret": live.endpoint.secret })))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// The new secret; generated when absent.
    secret: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/endpoints/{id}/secret/rotate", operation_id = "rotate_secret", tag = "endpoints", params(("id" = String, Path, description = "Its id")), request_body = Option<RotateInput>, responses((status = 200, description = "The new secret", body = Object), crate::http::openapi::Errors))]
pub async fn rotate_secret(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    input: Option<ApiJson<RotateInput>>,
) -> Result<HttpResponse, ApiError> {
    let mut live = owned(&state, &actor.caller, &id).await?;
    let before = live.endpoint.clone();
    let new = match input.and_then(|i| i.into_inner().secret) {
        Some(s) => {
            signing::secret_key(&s).map_err(|e| ApiError::invalid("secret", e.to_string()))?;
            s
        }
        None => signing::generate_secret(),
    };
    let now = unix_ms();
    let expires_at = now + state.settings.delivery.secret_overlap.as_millis() as u64;
    let e = &mut live.endpoint;
    e.previous_secrets.retain(|p| p.expires_at > now);
    e.previous_secrets.push(PreviousSecret {
        secret: std::mem::replace(&mut e.secret, new),
        expires_at,
    });
    e.updated_at = now.max(e.updated_at + 1);
    let audit = actor.record(&e.id, &e.tenant_id, endpoint_changes(Some(&before), e));
    state
        .store
        .put_endpoint(e, DisabledByHookd::Keep, &audit)
        .await?;
    refresh(&state).await;
    Ok(HttpResponse::Ok().json(json!({
        "secret": live.endpoint.secret,
        "previous_secret_expires_at": expires_at,
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestInput {
    /// The event type of the sample, e.g. `whatsapp.messages`.
    #[serde(rename = "type")]
    event_type: String,
}

/// Sends a sample event now and answers with what the endpoint did. Nothing is stored but
/// the audit log's records of the send: one before it, one with its result.
#[utoipa::path(post, path = "/api/v1/endpoints/{id}/test", operation_id = "test_send", tag = "endpoints", params(("id" = String, Path, description = "Its id")), request_body = TestInput, responses((status = 200, description = "The attempt", body = Object), crate::http::openapi::Errors))]
pub async fn test_send(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    input: ApiJson<TestInput>,
) -> Result<HttpResponse, ApiError> {
    let live = owned(&state, &actor.caller, &id).await?;
    let event_type = input.into_inner().event_type;
    // The catalogue's real-shaped sample, split as Meta's body would be.
    let sample = catalogue::find(&event_type)
        .and_then(|t| t.sample_event())
        .ok_or_else(|| {
            ApiError::invalid("type", "a type of the catalogue (GET /api/v1/event-types)")
        })?;
    let now = unix_ms();
    let event_id = format!("{now}-0");
    let body = event_body(&OutboundEvent {
        id: &event_id,
        event_type: &event_type,
        platform: sample.platform.as_str(),
        source: "test",
        account_id: &sample.account_id,
        received_at: now,
        occurred_at: sample.occurred_at_ms.or(Some(now)),
        data: &sample.data,
        identity: &sample.identity,
        test: true,
    });
    let wid = format!("test_{}", webhook_id(false, &event_id));
    let mut endpoint = live.endpoint.clone();
    // A test always sends the documented JSON, also to a raw-mode endpoint.
    endpoint.raw = false;
    let request = signed_request(
        &endpoint,
        &wid,
        Bytes::from(body),
        now,
        state.settings.delivery.endpoint_timeout,
    )
    .map_err(|e| ApiError::invalid("url", e.to_string()))?;
    let what = redacted(&json!({ "type": event_type, "url": endpoint.url }));
    let store = state.store.as_ref();
    let started = actor
        .start(store, &id, &live.endpoint.tenant_id, what)
        .await?;
    let result = state.outbound.post(request).await;
    let outcome = json!({ "status": result.status, "error": result.error });
    started.finish(store, outcome).await;
    Ok(HttpResponse::Ok().json(json!({
        "webhook_id": wid,
        "status": result.status,
        "duration_ms": result.duration.as_millis() as u64,
        "response": result.response,
        "error": result.error,
        "delivered": result.status.is_some_and(|s| (200..300).contains(&s)),
    })))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The previous page\'s `next_cursor`.
    #[param(min_length = 1)]
    pub(super) cursor: Option<String>,
    /// Items per page (default 50, at most `api.max_page_size`).
    #[param(minimum = 1)]
    pub(super) limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/endpoints/{id}/attempts", operation_id = "attempts", tag = "deliveries", params(("id" = String, Path, description = "Its id"), PageParams), responses((status = 200, description = "The attempt log", body = crate::http::openapi::PageOf<crate::model::AttemptEntry>), crate::http::openapi::Errors))]
pub async fn attempts(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    owned(&state, &caller, &id).await?;
    let p = params.into_inner();
    let limit = page_size(p.limit, state.settings.api.max_page_size)?;
    let page = state
        .store
        .list_attempts(&id, p.cursor.as_deref(), limit)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// How far back from now: a duration such as `1h`, `7d` (default 24h); or `from` and `to`.
    period: Option<String>,
    /// Or an explicit range, Unix ms.
    from: Option<u64>,
    to: Option<u64>,
}

/// The statistics window, at most the time statistics are kept.
pub(super) fn period(p: &PeriodParams, keep: std::time::Duration) -> Result<(u64, u64), ApiError> {
    let now = unix_ms();
    let to = p.to.unwrap_or(now);
    let from = match (p.from, &p.period) {
        (Some(f), None) => f,
        (None, Some(text)) => {
            let d = humantime::parse_duration(text)
                .map_err(|e| ApiError::BadRequest(format!("period {text:?}: {e}")))?;
            to.saturating_sub(d.as_millis() as u64)
        }
        (None, None) => to.saturating_sub(86_400_000),
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "give either period or from, not both".into(),
            ));
        }
    };
    if from > to {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    Ok((from.max(now.saturating_sub(keep.as_millis() as u64)), to))
}

#[utoipa::path(get, path = "/api/v1/endpoints/{id}/stats", operation_id = "endpoint_stats", tag = "deliveries", params(("id" = String, Path, description = "Its id"), PeriodParams), responses((status = 200, description = "Delivery statistics", body = Object), crate::http::openapi::Errors))]
pub async fn endpoint_stats(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
    params: web::Query<PeriodParams>,
) -> Result<HttpResponse, ApiError> {
    let live = owned(&state, &caller, &id).await?;
    let (from, to) = period(&params, state.settings.delivery.log_retention)?;
    let buckets = state.store.stats_buckets(&id, from, to).await?;
    let mut s = stats::summarize(&buckets);
    s.last_success = live.health.last_success;
    s.last_failure = live.health.last_failure;
    Ok(HttpResponse::Ok().json(json!({
        "endpoint_id": live.endpoint.id,
        "from": from,
        "to": to,
        "stats": s,
    })))
}
