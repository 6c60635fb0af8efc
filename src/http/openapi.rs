//! The OpenAPI 3.1 description of hookd's HTTP interface, generated from the handlers'
//! annotations and the request and response types, served at `GET /api/v1/openapi.json`.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use super::{
    AppState, api, audit, corrections, deliveries, endpoints, event_types, graph, health, ingress,
    stream, tenants, test_suites, ui,
};
use crate::model::{DeliveryState, DeliveryStatus};
use crate::store::StoredEvent;

/// An error answer: `{"error": {...}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid`,
    /// `rate_limited`, `not_configured`, `storage_unavailable`, `graph_refused`,
    /// `graph_rate_limited`, `graph_unreachable`, `method_not_allowed`.
    code: String,
    message: String,
    /// The query or path parameter at fault (`400`).
    parameter: Option<String>,
    /// The body field at fault (`422`).
    field: Option<String>,
    /// Meta's error, whole (`code`, `type`, `message`, `fbtrace_id`, …), for Graph calls.
    #[schema(value_type = Option<Object>)]
    graph: Option<serde_json::Value>,
}

/// The answers every management API call may get besides its own.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// A malformed id, cursor, query parameter or JSON body.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No key, or a wrong one (`WWW-Authenticate: Bearer`).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The key may not do this (a tenant key on an admin route).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// What the path names does not exist, or the caller may not see it.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A conflict with what is stored, an idempotency key in use, or a setting missing.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// A body field with a wrong type or value (`field` names it).
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The key's rate or the address's failed authentications (`Retry-After`).
    #[response(status = 429)]
    TooManyRequests(ErrorBody),
    /// Storage unreachable (`Retry-After`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// One page of a list, newest first unless said otherwise.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PageOf<T> {
    items: Vec<T>,
    /// Whether `next_cursor` is there; may be true beside a short page.
    has_more: bool,
    /// Pass as `cursor` for the next page.
    next_cursor: Option<String>,
}

/// A new endpoint: as a change, with `url` and `event_types` required.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct NewEndpoint {
    url: String,
    /// Exact types, `platform.*` or `*`.
    event_types: Vec<String>,
    #[serde(flatten)]
    rest: crate::delivery::endpoint::EndpointInput,
}

/// An event with where its deliveries stand.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventDetail {
    #[serde(flatten)]
    event: StoredEvent,
    /// The worst of its deliveries' states, or `unrouted`.
    status: String,
    deliveries: Vec<DeliveryState>,
}

/// What became of each sample of a test run.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RunResults {
    id: String,
    suite_id: String,
    started_at: u64,
    summary: crate::suites::verdict::Summary,
    results: Vec<crate::suites::verdict::TypeResult>,
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin key, or a tenant key where a route says so.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Links from what an operation creates to the operations on it, so a client (and a
/// stateful test) can follow them: `(path, method, status, link name, operation, parameters)`.
/// Added to the JSON: utoipa 5 writes a link's `operationId` as `operation_id`.
/// A link: path, method, status, its name, the operation, and the parameters it passes.
type Link = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const LINKS: &[Link] = &[
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "get",
        "endpoints_get",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "update",
        "update",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "secret",
        "secret",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "rotate",
        "rotate_secret",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "test",
        "test_send",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "attempts",
        "attempts",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "stats",
        "endpoint_stats",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/endpoints",
        "post",
        "201",
        "delete",
        "endpoints_delete",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/tenants",
        "post",
        "201",
        "get",
        "tenants_get",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/tenants",
        "post",
        "201",
        "key",
        "create_key",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/tenants",
        "post",
        "201",
        "accounts",
        "add_accounts",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/test-suites",
        "post",
        "201",
        "get",
        "test_suites_get",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/test-suites",
        "post",
        "201",
        "run",
        "run",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/test-suites",
        "post",
        "201",
        "delete",
        "test_suites_delete",
        &[("id", "$response.body#/id")],
    ),
    (
        "/api/v1/test-suites/{id}/run",
        "post",
        "202",
        "results",
        "results",
        &[
            ("id", "$response.body#/suite_id"),
            ("run_id", "$response.body#/id"),
        ],
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookd",
        description = "Meta webhooks in (WhatsApp Business, Messenger and Pages, Instagram), \
            journaled, split, deduplicated, and delivered to subscriber endpoints. The management \
            API under /api/v1 takes `Authorization: Bearer <key>`: the admin key, or a tenant \
            key where a route says so. A POST may carry an `Idempotency-Key`."
    ),
    modifiers(&BearerKey),
    security(("api_key" = [])),
    paths(
        api::list_events, api::get_event, corrections::delete_event, deliveries::retry_one,
        stream::stream,
        test_suites::list, test_suites::create, test_suites::get, test_suites::delete,
        test_suites::run, test_suites::results,
        event_types::list, event_types::get,
        graph::list_subscriptions, graph::subscribe, graph::unsubscribe, graph::check,
        graph::waba_apps, graph::waba_subscribe, graph::waba_unsubscribe,
        graph::phone_webhook, graph::set_phone_webhook, graph::list_pages,
        graph::put_page_token, graph::delete_page_token,
        graph::page_apps, graph::page_subscribe, graph::page_unsubscribe,
        tenants::create, tenants::list, tenants::get, tenants::create_key,
        tenants::add_accounts, tenants::remove_account, tenants::delete_key,
        endpoints::create, endpoints::list, endpoints::get, endpoints::update, endpoints::delete,
        endpoints::secret, endpoints::rotate_secret, endpoints::test_send, endpoints::attempts,
        endpoints::endpoint_stats,
        deliveries::overall_stats, deliveries::list_dead, deliveries::replay,
        deliveries::purge_attempts,
        api::stats, api::me, api::list_quarantine, corrections::delete, corrections::reprocess,
        api::list_rejected, audit::list, openapi_json,
        ingress::handshake, ingress::receive, health::live, health::ready, health::metrics,
        ui::root, ui::dashboard, ui::reference, ui::asset,
    ),
    components(schemas(ErrorBody, DeliveryStatus)),
    tags(
        (name = "events", description = "Split, deduplicated events and their deliveries"),
        (name = "deliveries", description = "Attempts, statistics, dead letters, replay"),
        (name = "endpoints", description = "Subscriber endpoints"),
        (name = "tenants", description = "Tenants, their keys and Meta accounts (admin)"),
        (name = "test suites", description = "Meta-shaped samples through hookd's own ingress"),
        (name = "graph", description = "Subscriptions through Meta's Graph API (admin)"),
        (name = "operations", description = "Statistics, quarantine, rejections, audit log"),
        (name = "webhooks", description = "What Meta calls"),
        (name = "health", description = "Probes and metrics"),
        (name = "pages", description = "hookd's own pages and their assets"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`: this description (no key needed).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)))]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(served(state.settings.api.max_page_size))
}

/// The description with what depends on the settings: the largest page.
pub fn served(max_page_size: usize) -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let operations = doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut());
    for op in operations {
        let params = op.get_mut("parameters").and_then(|p| p.as_array_mut());
        for p in params
            .into_iter()
            .flatten()
            .filter(|p| p["name"] == "limit")
        {
            if let Some(schema) = p.get_mut("schema").and_then(|s| s.as_object_mut()) {
                schema.insert("maximum".into(), serde_json::json!(max_page_size));
            }
        }
    }
    for (path, method, status, name, operation, params) in LINKS {
        let parameters: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
            .collect();
        if let Some(response) = doc
            .pointer_mut(&format!(
                "/paths/{}/{method}/responses/{status}",
                path.replace('/', "~1")
            ))
            .and_then(|r| r.as_object_mut())
        {
            let links = response
                .entry("links")
                .or_insert_with(|| serde_json::json!({}));
            links[*name] = serde_json::json!({"operationId": operation, "parameters": parameters});
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `(METHOD, path)` the routing registers, read from its source (see `routes`).
    fn registered() -> Vec<(String, String)> {
        let source = include_str!("mod.rs");
        let api_start = source.find("fn api_routes").unwrap_or_default();
        let mut out = Vec::new();
        for (at, call) in source.match_indices("resource!(") {
            let call = &source[at + call.len()..];
            let call = &call[..call.find(");").unwrap_or(call.len())];
            let Some(path) = call.split('"').nth(1) else {
                continue;
            };
            if path == "$path" {
                continue;
            }
            let path = if at > api_start {
                format!("/api/v1{path}")
            } else {
                path.to_string()
            };
            for method in ["get", "post", "put", "patch", "delete"] {
                if call.contains(&format!("{method} =>")) {
                    out.push((method.to_uppercase(), path.clone()));
                }
            }
        }
        out.sort();
        out
    }

    fn described() -> Vec<(String, String)> {
        let doc = served(100);
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in item.as_object().into_iter().flatten().map(|(m, _)| m) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let (registered, described) = (registered(), described());
        assert!(registered.len() > 50, "{registered:?}");
        let missing: Vec<_> = registered
            .iter()
            .filter(|r| !described.contains(r))
            .collect();
        let extra: Vec<_> = described
            .iter()
            .filter(|d| !registered.contains(d))
            .collect();
        assert!(missing.is_empty(), "not described: {missing:?}");
        assert!(extra.is_empty(), "described but not routed: {extra:?}");
    }

    #[test]
    fn every_link_names_an_operation_of_the_document() {
        let doc = served(100);
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .into_iter()
            .flat_map(|p| p.values())
            .filter_map(|item| item.as_object())
            .flat_map(|item| item.values())
            .filter_map(|op| op["operationId"].as_str())
            .collect();
        let mut linked = 0;
        for (path, method, status, name, operation, _) in LINKS {
            let link = &doc["paths"][path][method]["responses"][status]["links"][name];
            assert_eq!(
                link["operationId"], *operation,
                "{path} {method} {status} {name}"
            );
            assert!(ids.contains(operation), "{operation} is not an operation");
            linked += 1;
        }
        assert_eq!(linked, LINKS.len());
    }

    #[test]
    fn the_document_is_openapi_3_1_with_the_bearer_scheme() {
        let doc = served(100);
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["api_key"]["scheme"],
            "bearer"
        );
    }
}
