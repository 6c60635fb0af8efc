//! The audit log on the API side: [`Actor`], which a handler that changes something takes to
//! make the record its storage call writes with the change; [`middleware`], which records
//! the refused or failed requests of authenticated callers (nothing changed then, so the
//! record is written on its own); and `GET /api/v1/audit`.

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde_json::Value;

use super::AppState;
use super::auth::{Caller, identify};
use super::error::ApiError;
use crate::metrics as m;
use crate::model::audit::{AuditRecord, Outcome};
use crate::store::{AuditQuery, Backend};
use crate::time::unix_ms;

/// The action each route that changes something (or reveals a secret) records, by method and
/// route as registered.
pub const ACTIONS: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/tenants", "tenant.create"),
    ("POST", "/api/v1/test-suites", "test_suite.create"),
    ("DELETE", "/api/v1/test-suites/{id}", "test_suite.delete"),
    ("POST", "/api/v1/test-suites/{id}/run", "test_suite.run"),
    ("POST", "/api/v1/tenants/{id}/keys", "key.create"),
    ("DELETE", "/api/v1/tenants/{id}/keys/{key_id}", "key.delete"),
    ("POST", "/api/v1/tenants/{id}/accounts", "account.assign"),
    (
        "DELETE",
        "/api/v1/tenants/{id}/accounts/{account_id}",
        "account.release",
    ),
    ("POST", "/api/v1/endpoints", "endpoint.create"),
    ("PATCH", "/api/v1/endpoints/{id}", "endpoint.update"),
    ("DELETE", "/api/v1/endpoints/{id}", "endpoint.delete"),
    (
        "GET",
        "/api/v1/endpoints/{id}/secret",
        "endpoint.secret_reveal",
    ),
    (
        "POST",
        "/api/v1/endpoints/{id}/secret/rotate",
        "endpoint.secret_rotate",
    ),
    ("POST", "/api/v1/endpoints/{id}/test", "endpoint.test"),
    (
        "POST",
        "/api/v1/events/{id}/deliveries/{endpoint_id}/retry",
        "delivery.retry",
    ),
    ("POST", "/api/v1/dead/replay", "dead.replay"),
    ("DELETE", "/api/v1/attempts", "attempts.purge"),
    (
        "POST",
        "/api/v1/quarantine/{id}/reprocess",
        "quarantine.reprocess",
    ),
    ("DELETE", "/api/v1/quarantine/{id}", "quarantine.delete"),
    ("DELETE", "/api/v1/events/{id}", "event.delete"),
    (
        "POST",
        "/api/v1/sources/{source}/graph/subscriptions",
        "graph.subscribe",
    ),
    (
        "DELETE",
        "/api/v1/sources/{source}/graph/subscriptions/{object}",
        "graph.unsubscribe",
    ),
    (
        "POST",
        "/api/v1/sources/{source}/graph/subscriptions/{object}/check",
        "graph.check",
    ),
    (
        "POST",
        "/api/v1/sources/{source}/graph/wabas/{waba_id}/subscribed-apps",
        "graph.waba_subscribe",
    ),
    (
        "DELETE",
        "/api/v1/sources/{source}/graph/wabas/{waba_id}/subscribed-apps",
        "graph.waba_unsubscribe",
    ),
    (
        "PUT",
        "/api/v1/sources/{source}/graph/phone-numbers/{phone_number_id}/webhook",
        "graph.phone_number_callback",
    ),
    (
        "PUT",
        "/api/v1/sources/{source}/graph/pages/{page_id}/token",
        "graph.page_token_set",
    ),
    (
        "DELETE",
        "/api/v1/sources/{source}/graph/pages/{page_id}/token",
        "graph.page_token_delete",
    ),
    (
        "POST",
        "/api/v1/sources/{source}/graph/pages/{page_id}/subscribed-apps",
        "graph.page_subscribe",
    ),
    (
        "DELETE",
        "/api/v1/sources/{source}/graph/pages/{page_id}/subscribed-apps",
        "graph.page_unsubscribe",
    ),
];

fn known_action(method: &str, route: &str) -> Option<&'static str> {
    ACTIONS
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|(_, _, a)| *a)
}

/// The action of `method` on `route`, or both as they are for a route missing from
/// [`ACTIONS`].
pub fn action_of(method: &str, route: &str) -> String {
    known_action(method, route).map_or_else(|| format!("{method} {route}"), str::to_string)
}

/// Where a request comes from and what it addresses, as a record names them.
#[derive(Debug, Clone)]
struct Origin {
    address: String,
    method: String,
    /// As registered, e.g. `/api/v1/endpoints/{id}`.
    route: String,
    /// The route's last parameter (`key_ab12` of `/tenants/t_1/keys/key_ab12`): the most
    /// specific thing it names.
    object_id: String,
}

impl Origin {
    fn of(req: &HttpRequest) -> Origin {
        let trusted = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.server.trusted_proxies.clone())
            .unwrap_or_default();
        // From the application's routes, so known before this request's own routing is done.
        let route = req
            .match_pattern()
            .unwrap_or_else(|| req.path().to_string());
        Origin {
            address: super::client_addr::client_addr(req, &trusted)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            method: req.method().to_string(),
            object_id: last_parameter(&route, req.path()).to_string(),
            route,
        }
    }
}

/// The value in `path` of the last `{parameter}` of `route`; empty when it has none.
fn last_parameter<'a>(route: &str, path: &'a str) -> &'a str {
    route
        .split('/')
        .zip(path.split('/'))
        .filter(|(r, _)| r.starts_with('{'))
        .last()
        .map_or("", |(_, p)| p)
}

/// Who makes a request, from where, through which route. Take it in a handler that changes
/// something, in place of [`Caller`], and give [`Actor::record`] to the storage call that
/// makes the change.
#[derive(Debug, Clone)]
pub struct Actor {
    pub caller: Caller,
    /// `admin` or the tenant key's id.
    name: String,
    origin: Origin,
}

impl Actor {
    /// What the route acts on, as its parameters name it.
    pub fn object_id(&self) -> &str {
        &self.origin.object_id
    }

    /// The record of this request's change to `object_id`, which concerns `tenant_id` (empty:
    /// no tenant), with the changed fields or parameters (redacted by the caller, see
    /// [`crate::model::audit`]). Outcome `applied`: give it to the call that makes the change.
    pub fn record(&self, object_id: &str, tenant_id: &str, changes: Value) -> AuditRecord {
        let o = &self.origin;
        AuditRecord {
            id: String::new(),
            at: unix_ms(),
            actor: self.name.clone(),
            address: o.address.clone(),
            method: o.method.clone(),
            route: o.route.clone(),
            action: action_of(&o.method, &o.route),
            object_id: object_id.to_string(),
            tenant_id: tenant_id.to_string(),
            changes,
            outcome: Outcome::Applied,
            status: None,
            error: None,
        }
    }

    /// The tenant a change made by this caller concerns when nothing else names one: its own
    /// for a tenant key, none for the admin.
    pub fn own_tenant(&self) -> &str {
        self.caller.tenant().unwrap_or_default()
    }

    /// Records the start of work that cannot be one atomic step with a record (a replay, a
    /// purge, a request sent out): call it before the work, which must not start if it fails.
    pub async fn start(
        &self,
        store: &dyn Backend,
        object_id: &str,
        tenant_id: &str,
        changes: Value,
    ) -> Result<Started, ApiError> {
        let mut record = self.record(object_id, tenant_id, changes);
        record.outcome = Outcome::Started;
        let id = store.record_audit(&record).await?;
        Ok(Started { record, id })
    }
}

/// Marks a response whose handler recorded its outcome itself (with the start it ends), so the
/// middleware does not record it again.
#[derive(Debug, Clone, Copy)]
pub struct Recorded;

/// Work whose start is recorded; [`Started::finish`] records its end.
pub struct Started {
    record: AuditRecord,
    id: String,
}

impl Started {
    /// Records the end of the work, with `result`'s fields added to the start's and the
    /// start record's id (`started_id`). The work is done by then: a record that cannot be
    /// written is logged, not an error.
    pub async fn finish(mut self, store: &dyn Backend, result: Value) {
        let r = &mut self.record;
        r.outcome = Outcome::Applied;
        r.at = unix_ms();
        if let (Value::Object(changes), Value::Object(result)) = (&mut r.changes, result) {
            changes.extend(result);
            changes.insert("started_id".into(), Value::String(self.id));
        }
        if let Err(e) = store.record_audit(r).await {
            tracing::warn!(
                error = %e,
                action = %r.action,
                "the end of an audited action could not be recorded in the audit log"
            );
        }
    }
}

impl Started {
    /// Records that the work failed with `error` and answers with it.
    pub async fn fail(mut self, store: &dyn Backend, error: ApiError) -> HttpResponse {
        use actix_web::ResponseError;
        let status = error.status_code().as_u16();
        let r = &mut self.record;
        r.outcome = Outcome::of_status(status);
        r.status = Some(status);
        r.error = Some(error.audit_summary());
        r.at = unix_ms();
        if let Value::Object(changes) = &mut r.changes {
            changes.insert("started_id".into(), Value::String(self.id.clone()));
        }
        if let Err(e) = store.record_audit(r).await {
            metrics::counter!(m::AUDIT_UNRECORDED).increment(1);
            tracing::warn!(error = %e, action = %r.action, "a failed action could not be recorded in the audit log");
        }
        let mut res = error.error_response();
        res.extensions_mut().insert(Recorded);
        res
    }
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Actor, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let origin = Origin::of(req);
        let identified = identify(req);
        Box::pin(async move {
            let (caller, name) = identified.await?;
            Ok(Actor {
                caller,
                name,
                origin,
            })
        })
    }
}

/// Records the requests to a route of [`ACTIONS`] answered with an error: the change was
/// refused (4xx) or failed (5xx) and nothing changed, so the record stands on its own. A
/// request without a valid key is no one's change (its failed authentication is logged and
/// counted instead), and one over its rate limit never reaches this.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let origin = Origin::of(req.request());
    let (Some(state), true) = (
        req.app_data::<web::Data<AppState>>().cloned(),
        known_action(&origin.method, &origin.route).is_some(),
    ) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    // Taken now: a request whose extractor fails comes back as an error, without itself. The
    // key is only looked up if the request is refused.
    let identified = identify(req.request());
    let result = next
        .call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body);
    let (status, error) = match &result {
        Ok(res) => (res.status(), res.response().error()),
        Err(e) => (e.as_response_error().status_code(), Some(e)),
    };
    let refused = status.is_client_error() || status.is_server_error();
    let recorded =
        matches!(&result, Ok(res) if res.response().extensions().get::<Recorded>().is_some());
    if !refused || status == StatusCode::UNAUTHORIZED || recorded {
        return result;
    }
    let Ok((caller, name)) = identified.await else {
        return result;
    };
    let actor = Actor {
        caller,
        name,
        origin,
    };
    let mut record = actor.record(actor.object_id(), actor.own_tenant(), Value::Null);
    record.outcome = Outcome::of_status(status.as_u16());
    record.status = Some(status.as_u16());
    record.error = Some(
        error
            .and_then(|e| e.as_error::<ApiError>())
            .map(ApiError::audit_summary)
            .unwrap_or_else(|| status.canonical_reason().unwrap_or_default().to_string()),
    );
    if let Err(e) = state.store.record_audit(&record).await {
        metrics::counter!(m::AUDIT_UNRECORDED).increment(1);
        tracing::warn!(
            error = %e,
            action = %record.action,
            actor = %record.actor,
            status = status.as_u16(),
            "a refused management API request could not be recorded in the audit log"
        );
    }
    result
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    tenant_id: Option<String>,
    actor: Option<String>,
    /// An action, or `kind.*`.
    action: Option<String>,
    object_id: Option<String>,
    #[param(pattern = "^(applied|started|refused|failed)$")]
    outcome: Option<String>,
    /// At or after / at or before, Unix ms.
    from: Option<u64>,
    to: Option<u64>,
    /// The previous page\'s `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Items per page (default 50, at most `api.max_page_size`).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// `GET /api/v1/audit`: the admin reads every record, a tenant key those concerning its
/// tenant.
#[utoipa::path(get, path = "/api/v1/audit", operation_id = "audit_list", tag = "operations", params(AuditParams), responses((status = 200, description = "The audit log, newest first", body = crate::http::openapi::PageOf<crate::model::audit::AuditRecord>), crate::http::openapi::Errors))]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let tenant_id = match (caller.tenant(), p.tenant_id) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(ApiError::BadParameter(
                "tenant_id",
                "a tenant key reads its own tenant's records".into(),
            ));
        }
        (Some(own), _) => Some(own.to_string()),
        (None, asked) => asked,
    };
    let outcome = p
        .outcome
        .map(|o| {
            Outcome::parse(&o).ok_or_else(|| {
                ApiError::BadParameter("outcome", "one of applied, started, refused, failed".into())
            })
        })
        .transpose()?;
    if let (Some(from), Some(to)) = (p.from, p.to)
        && from > to
    {
        return Err(ApiError::BadRequest("from must not be after to".into()));
    }
    let query = AuditQuery {
        tenant_id,
        actor: p.actor,
        action: p.action,
        object_id: p.object_id,
        outcome,
        from_ms: p.from,
        to_ms: p.to,
        cursor: p.cursor,
        limit: super::api::page_size(p.limit, state.settings.api.max_page_size)?,
    };
    Ok(HttpResponse::Ok().json(state.store.list_audit(&query).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_names_a_kind_and_what_was_done() {
        for (method, route, action) in ACTIONS {
            let (kind, what) = action.split_once('.').unwrap_or_default();
            assert!(
                !kind.is_empty() && !what.is_empty() && !what.contains('.'),
                "{method} {route}: {action}"
            );
            assert_eq!(action_of(method, route), *action);
        }
        assert_eq!(action_of("PUT", "/api/v1/x"), "PUT /api/v1/x");
    }

    /// A new route that changes something must say what it records: every `post`, `patch`,
    /// `put` and `delete` of the API's routes is in [`ACTIONS`].
    #[test]
    fn every_route_that_changes_something_has_an_action() {
        let routes = include_str!("mod.rs");
        let api = &routes[routes.find("fn api_routes").unwrap_or_default()..];
        let mut checked = 0;
        for call in api.split("resource!(").skip(1) {
            let call = &call[..call.find(");").unwrap_or(call.len())];
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            for method in ["post", "patch", "put", "delete"] {
                if call.contains(&format!("{method} =>")) {
                    let (method, route) = (method.to_uppercase(), format!("/api/v1{path}"));
                    assert!(
                        known_action(&method, &route).is_some(),
                        "{method} {route} changes something but records no action"
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(
            checked,
            ACTIONS.len() - 1,
            "all but the secret reveal (a GET)"
        );
    }

    #[test]
    fn the_object_is_the_routes_last_parameter() {
        let route = "/api/v1/tenants/{id}/keys/{key_id}";
        assert_eq!(
            last_parameter(route, "/api/v1/tenants/t_1/keys/key_2"),
            "key_2"
        );
        let retry = "/api/v1/events/{id}/deliveries/{endpoint_id}/retry";
        let path = "/api/v1/events/1-0/deliveries/ep_1/retry";
        assert_eq!(last_parameter(retry, path), "ep_1");
        assert_eq!(last_parameter("/api/v1/endpoints", "/api/v1/endpoints"), "");
    }
}
