//! Subscription management through Meta's Graph API (`/api/v1/sources/{source}/graph/…`,
//! admin only): the app's webhook subscriptions per object and their check, a WhatsApp
//! Business Account's subscribed apps (with its callback override), a phone number's
//! callback override, and a Page's subscribed apps with the Page tokens they need. Every call
//! that changes something at Meta is recorded in the audit log before it is made and after.

use actix_web::{HttpResponse, web};
use hyper::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::audit::{Actor, Started};
use super::auth::Caller;
use super::error::ApiError;
use super::json::ApiJson;
use crate::config::SourceSettings;
use crate::graph::check::judge;
use crate::graph::subscriptions::{
    OBJECTS, callback_url, field_list, is_node_id, parse_subscriptions, valid_callback,
};
use crate::graph::{Body, GraphError};
use crate::model::PageToken;
use crate::model::audit::{REDACTED, redact_url};
use crate::time::unix_ms;

/// The admin alone manages what Meta sends where.
fn admin_only(caller: &Caller) -> Result<(), ApiError> {
    match caller.tenant() {
        None => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "Graph subscriptions are managed with the admin key",
        )),
    }
}

/// A configured source, by the name in the path (any letter case, as webhook URLs).
fn source<'a>(state: &'a AppState, name: &str) -> Result<(&'a str, &'a SourceSettings), ApiError> {
    let (name, _) = state.source(name).ok_or(ApiError::NotFound("source"))?;
    let settings = state
        .settings
        .sources
        .get(name)
        .ok_or(ApiError::NotFound("source"))?;
    Ok((name, settings))
}

/// The app id and app access token of a source.
fn app_credentials(name: &str, s: &SourceSettings) -> Result<(String, String), ApiError> {
    let token = s.graph.app_access_token(&s.app_secrets).ok_or_else(|| {
        ApiError::NotConfigured(format!("sources.{name}.graph.app_id is not set"))
    })?;
    Ok((s.graph.app_id.clone(), token))
}

/// The system-user token for WhatsApp Business Account and phone number calls.
fn access_token<'a>(name: &str, s: &'a SourceSettings) -> Result<&'a str, ApiError> {
    if s.graph.access_token.is_empty() {
        return Err(ApiError::NotConfigured(format!(
            "sources.{name}.graph.access_token is not set (a system-user token with \
             whatsapp_business_management)"
        )));
    }
    Ok(&s.graph.access_token)
}

/// A Graph node id from the path.
fn node(parameter: &'static str, id: &str) -> Result<String, ApiError> {
    if is_node_id(id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::BadParameter(
            parameter,
            "a Meta id (digits)".into(),
        ))
    }
}

/// The callback URL a call gives Meta: the one asked for, else the source's own.
fn callback(state: &AppState, name: &str, asked: Option<String>) -> Result<String, ApiError> {
    match asked {
        Some(url) if valid_callback(&url) => Ok(url),
        Some(_) => Err(ApiError::invalid(
            "callback_url",
            "an http(s) URL of at most 200 characters",
        )),
        None => callback_url(&state.settings.graph.public_url, name).ok_or_else(|| {
            ApiError::invalid(
                "callback_url",
                "needed: graph.public_url is not set, so hookd does not know its own URL",
            )
        }),
    }
}

fn object(name: &str) -> Result<String, ApiError> {
    if OBJECTS.contains(&name) {
        Ok(name.to_string())
    } else {
        Err(ApiError::BadParameter(
            "object",
            format!("one of {}", OBJECTS.join(", ")),
        ))
    }
}

/// Records the end of a Graph call whose start is recorded, with Meta's answer, or its failure
/// with Meta's error; answers with either.
async fn ended(
    state: &AppState,
    started: Started,
    result: Result<Value, GraphError>,
) -> HttpResponse {
    let store = state.store.as_ref();
    match result {
        Ok(answer) => {
            started.finish(store, json!({ "graph": answer })).await;
            HttpResponse::Ok().json(answer)
        }
        Err(e) => started.fail(store, ApiError::Graph(e)).await,
    }
}

/// `GET …/graph/subscriptions`: the app's subscriptions as Meta has them, and the callback URL
/// hookd expects for this source.
#[utoipa::path(get, path = "/api/v1/sources/{source}/graph/subscriptions", operation_id = "list_subscriptions", tag = "graph", params(("source" = String, Path, description = "A configured source")), responses((status = 200, description = "The app's subscriptions as Meta has them", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn list_subscriptions(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let (name, s) = source(&state, &path)?;
    let (app_id, token) = app_credentials(name, s)?;
    let answer = state
        .graph
        .call(
            Method::GET,
            &format!("{app_id}/subscriptions"),
            &[],
            Body::None,
            &token,
        )
        .await
        .map_err(ApiError::Graph)?;
    Ok(HttpResponse::Ok().json(json!({
        "items": parse_subscriptions(&answer),
        "expected_callback_url": callback_url(&state.settings.graph.public_url, name),
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeInput {
    object: String,
    fields: Vec<String>,
    callback_url: Option<String>,
    /// Ask Meta to include the changed values (some objects only).
    #[serde(default)]
    include_values: bool,
}

/// `POST …/graph/subscriptions`: subscribes the app to `fields` of `object` with this source's
/// callback URL and verify token (Meta runs the handshake before it answers).
#[utoipa::path(post, path = "/api/v1/sources/{source}/graph/subscriptions", operation_id = "subscribe", tag = "graph", params(("source" = String, Path, description = "A configured source")), request_body = SubscribeInput, responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn subscribe(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<String>,
    input: ApiJson<SubscribeInput>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (name, s) = source(&state, &path)?;
    let (app_id, token) = app_credentials(name, s)?;
    let input = input.into_inner();
    let object = object(&input.object)
        .map_err(|_| ApiError::invalid("object", format!("one of {}", OBJECTS.join(", "))))?;
    let fields = field_list(&input.fields).map_err(|p| ApiError::invalid("fields", p))?;
    let url = callback(&state, name, input.callback_url)?;
    let what = json!({"object": object, "fields": input.fields, "callback_url": redact_url(&url)});
    let started = actor.start(state.store.as_ref(), name, "", what).await?;
    let params = vec![
        ("object", object),
        ("callback_url", url),
        ("fields", fields),
        ("verify_token", s.verify_token.clone()),
        ("include_values", input.include_values.to_string()),
    ];
    let result = state
        .graph
        .call(
            Method::POST,
            &format!("{app_id}/subscriptions"),
            &[],
            Body::Form(params),
            &token,
        )
        .await;
    Ok(ended(&state, started, result).await)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeParams {
    /// Comma-separated; none: the whole object.
    fields: Option<String>,
}

/// `DELETE …/graph/subscriptions/{object}`: removes the app's subscription to some fields of
/// an object, or to all of it.
#[utoipa::path(delete, path = "/api/v1/sources/{source}/graph/subscriptions/{object}", operation_id = "unsubscribe", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("object" = String, Path, description = "`whatsapp_business_account`, `page`, `instagram` (or `user`, `permissions`)"), UnsubscribeParams), responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn unsubscribe(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: web::Query<UnsubscribeParams>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, object_name) = path.into_inner();
    let (name, s) = source(&state, &source_name)?;
    let (app_id, token) = app_credentials(name, s)?;
    let object = object(&object_name)?;
    let fields = params
        .into_inner()
        .fields
        .map(|f| {
            let list: Vec<String> = f.split(',').map(str::to_string).collect();
            field_list(&list).map_err(|p| ApiError::BadParameter("fields", p))
        })
        .transpose()?;
    let what = json!({"object": object, "fields": fields});
    let started = actor.start(state.store.as_ref(), &object, "", what).await?;
    let mut query = vec![("object", object.as_str())];
    if let Some(f) = &fields {
        query.push(("fields", f.as_str()));
    }
    let result = state
        .graph
        .call(
            Method::DELETE,
            &format!("{app_id}/subscriptions"),
            &query,
            Body::None,
            &token,
        )
        .await;
    Ok(ended(&state, started, result).await)
}

/// `POST …/graph/subscriptions/{object}/check`: re-posts the subscription Meta has on record
/// (same callback URL, same fields, this source's verify token), which makes Meta run the
/// handshake against that URL, and says what came of it. What is subscribed does not change;
/// the verify token Meta keeps becomes this source's.
#[utoipa::path(post, path = "/api/v1/sources/{source}/graph/subscriptions/{object}/check", operation_id = "check", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("object" = String, Path, description = "`whatsapp_business_account`, `page`, `instagram` (or `user`, `permissions`)")), responses((status = 200, description = "The verdict", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn check(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, object_name) = path.into_inner();
    let (name, s) = source(&state, &source_name)?;
    let (app_id, token) = app_credentials(name, s)?;
    let object = object(&object_name)?;
    let edge = format!("{app_id}/subscriptions");
    let listed = state
        .graph
        .call(Method::GET, &edge, &[], Body::None, &token)
        .await
        .map_err(ApiError::Graph)?;
    let on_record = parse_subscriptions(&listed)
        .into_iter()
        .find(|sub| sub.object == object);
    let expected = callback_url(&state.settings.graph.public_url, name);
    let mut answer = json!({
        "object": object,
        "callback_url": on_record.as_ref().map(|sub| sub.callback_url.clone()),
        "expected_callback_url": expected,
        "callback_url_matches": match (&on_record, &expected) {
            (Some(sub), Some(url)) => json!(sub.callback_url == *url),
            _ => Value::Null,
        },
        "fields": on_record.as_ref().map(|sub| sub.field_names()),
    });
    let Some(sub) = on_record else {
        let report = judge(name, None, &[]).map_err(ApiError::Graph)?;
        merge(&mut answer, &report);
        return Ok(HttpResponse::Ok().json(answer));
    };
    let what = json!({"object": object, "callback_url": redact_url(&sub.callback_url)});
    let started = actor.start(state.store.as_ref(), &object, "", what).await?;
    let since = unix_ms();
    let fields = sub.field_names().join(",");
    let params = vec![
        ("object", object.clone()),
        ("callback_url", sub.callback_url.clone()),
        ("fields", fields),
        ("verify_token", s.verify_token.clone()),
    ];
    let repost = state
        .graph
        .call(Method::POST, &edge, &[], Body::Form(params), &token)
        .await
        .map(drop);
    let seen = state.handshakes.since(since);
    match judge(name, Some(repost), &seen) {
        Ok(report) => {
            merge(&mut answer, &report);
            let store = state.store.as_ref();
            started
                .finish(store, json!({"verdict": report.verdict}))
                .await;
            Ok(HttpResponse::Ok().json(answer))
        }
        Err(e) => Ok(started.fail(state.store.as_ref(), ApiError::Graph(e)).await),
    }
}

fn merge(answer: &mut Value, report: &crate::graph::check::Report) {
    if let (Value::Object(a), Ok(Value::Object(r))) = (answer, serde_json::to_value(report)) {
        a.extend(r);
    }
}

/// `GET …/graph/wabas/{waba_id}/subscribed-apps`: the apps subscribed to a WhatsApp Business
/// Account, with any callback override.
#[utoipa::path(get, path = "/api/v1/sources/{source}/graph/wabas/{waba_id}/subscribed-apps", operation_id = "waba_apps", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("waba_id" = String, Path, description = "A WhatsApp Business Account id")), responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn waba_apps(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let (source_name, waba) = path.into_inner();
    let (name, s) = source(&state, &source_name)?;
    let token = access_token(name, s)?;
    let waba = node("waba_id", &waba)?;
    let answer = state
        .graph
        .call(
            Method::GET,
            &format!("{waba}/subscribed_apps"),
            &[],
            Body::None,
            token,
        )
        .await
        .map_err(ApiError::Graph)?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideInput {
    /// Route this account's (or number's) webhooks to a callback of their own: this source's,
    /// or `callback_url`.
    #[serde(default)]
    override_callback: bool,
    callback_url: Option<String>,
}

/// `POST …/graph/wabas/{waba_id}/subscribed-apps`: subscribes the app to a WhatsApp Business
/// Account, optionally with a callback override for it.
#[utoipa::path(post, path = "/api/v1/sources/{source}/graph/wabas/{waba_id}/subscribed-apps", operation_id = "waba_subscribe", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("waba_id" = String, Path, description = "A WhatsApp Business Account id")), request_body = OverrideInput, responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn waba_subscribe(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    input: ApiJson<OverrideInput>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, waba) = path.into_inner();
    let (name, s) = source(&state, &source_name)?;
    let token = access_token(name, s)?;
    let waba = node("waba_id", &waba)?;
    let input = input.into_inner();
    let (body, what) = if input.override_callback || input.callback_url.is_some() {
        let url = callback(&state, name, input.callback_url)?;
        let what = json!({"override_callback_uri": redact_url(&url)});
        let body = json!({"override_callback_uri": url, "verify_token": s.verify_token});
        (Body::Json(body), what)
    } else {
        (Body::None, json!({"override_callback_uri": null}))
    };
    let started = actor.start(state.store.as_ref(), &waba, "", what).await?;
    let result = state
        .graph
        .call(
            Method::POST,
            &format!("{waba}/subscribed_apps"),
            &[],
            body,
            token,
        )
        .await;
    Ok(ended(&state, started, result).await)
}

/// `DELETE …/graph/wabas/{waba_id}/subscribed-apps`: unsubscribes the app from a WhatsApp
/// Business Account.
#[utoipa::path(delete, path = "/api/v1/sources/{source}/graph/wabas/{waba_id}/subscribed-apps", operation_id = "waba_unsubscribe", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("waba_id" = String, Path, description = "A WhatsApp Business Account id")), responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn waba_unsubscribe(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, waba) = path.into_inner();
    let (name, s) = source(&state, &source_name)?;
    let token = access_token(name, s)?;
    let waba = node("waba_id", &waba)?;
    let started = actor
        .start(state.store.as_ref(), &waba, "", json!({}))
        .await?;
    let result = state
        .graph
        .call(
            Method::DELETE,
            &format!("{waba}/subscribed_apps"),
            &[],
            Body::None,
            token,
        )
        .await;
    Ok(ended(&state, started, result).await)
}

/// `GET …/graph/phone-numbers/{phone_number_id}/webhook`: the callbacks Meta uses for a phone
/// number (its own override, its account's, the app's).
#[utoipa::path(get, path = "/api/v1/sources/{source}/graph/phone-numbers/{phone_number_id}/webhook", operation_id = "phone_webhook", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("phone_number_id" = String, Path, description = "A phone number id")), responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn phone_webhook(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let (source_name, number) = path.into_inner();
    let (name, s) = source(&state, &source_name)?;
    let token = access_token(name, s)?;
    let number = node("phone_number_id", &number)?;
    let answer = state
        .graph
        .call(
            Method::GET,
            &number,
            &[("fields", "webhook_configuration")],
            Body::None,
            token,
        )
        .await
        .map_err(ApiError::Graph)?;
    Ok(HttpResponse::Ok().json(answer))
}

/// `PUT …/graph/phone-numbers/{phone_number_id}/webhook`: gives a phone number a callback of
/// its own (this source's, or `callback_url`).
#[utoipa::path(put, path = "/api/v1/sources/{source}/graph/phone-numbers/{phone_number_id}/webhook", operation_id = "set_phone_webhook", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("phone_number_id" = String, Path, description = "A phone number id")), request_body = OverrideInput, responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn set_phone_webhook(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    input: ApiJson<OverrideInput>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, number) = path.into_inner();
    let (name, s) = source(&state, &source_name)?;
    let token = access_token(name, s)?;
    let number = node("phone_number_id", &number)?;
    let input = input.into_inner();
    let url = callback(&state, name, input.callback_url)?;
    let what = json!({"override_callback_uri": redact_url(&url)});
    let started = actor.start(state.store.as_ref(), &number, "", what).await?;
    let body = json!({"webhook_configuration": {
        "override_callback_uri": url,
        "verify_token": s.verify_token,
    }});
    let result = state
        .graph
        .call(Method::POST, &number, &[], Body::Json(body), token)
        .await;
    Ok(ended(&state, started, result).await)
}

/// `GET …/graph/pages`: the Pages of this source with a stored token (never the token).
#[utoipa::path(get, path = "/api/v1/sources/{source}/graph/pages", operation_id = "list_pages", tag = "graph", params(("source" = String, Path, description = "A configured source")), responses((status = 200, description = "Pages with a stored token", body = Object), crate::http::openapi::Errors))]
pub async fn list_pages(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let (name, _) = source(&state, &path)?;
    let tokens = state.store.page_tokens(Some(name)).await?;
    let items: Vec<Value> = tokens
        .iter()
        .map(|t| json!({"page_id": t.page_id, "token_stored_at": t.stored_at}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageTokenInput {
    access_token: String,
}

/// `PUT …/graph/pages/{page_id}/token`: stores a Page access token (sealed), replacing any.
#[utoipa::path(put, path = "/api/v1/sources/{source}/graph/pages/{page_id}/token", operation_id = "put_page_token", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("page_id" = String, Path, description = "A Page id")), request_body = PageTokenInput, responses((status = 200, description = "Stored", body = Object), crate::http::openapi::Errors))]
pub async fn put_page_token(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    input: ApiJson<PageTokenInput>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, page) = path.into_inner();
    let (name, _) = source(&state, &source_name)?;
    let page = node("page_id", &page)?;
    let token = input.into_inner().access_token;
    let printable = token.bytes().all(|b| b.is_ascii_graphic());
    if token.is_empty() || token.len() > 2048 || !printable {
        return Err(ApiError::invalid(
            "access_token",
            "a Page access token (1-2048 printable characters)",
        ));
    }
    let token = PageToken {
        source: name.to_string(),
        page_id: page.clone(),
        token,
        stored_at: unix_ms(),
    };
    let changes = json!({"access_token": {"to": REDACTED}});
    state
        .store
        .put_page_token(&token, &actor.record(&page, "", changes))
        .await?;
    Ok(HttpResponse::Ok().json(json!({"page_id": page, "token_stored_at": token.stored_at})))
}

/// `DELETE …/graph/pages/{page_id}/token`.
#[utoipa::path(delete, path = "/api/v1/sources/{source}/graph/pages/{page_id}/token", operation_id = "delete_page_token", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("page_id" = String, Path, description = "A Page id")), responses((status = 204, description = "Deleted"), crate::http::openapi::Errors))]
pub async fn delete_page_token(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, page) = path.into_inner();
    let (name, _) = source(&state, &source_name)?;
    let page = node("page_id", &page)?;
    let changes = json!({"access_token": {"from": REDACTED}});
    let record = actor.record(&page, "", changes);
    if state.store.delete_page_token(name, &page, &record).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("page token"))
    }
}

/// The stored token of a Page, or what to do about its absence.
async fn page_token(state: &AppState, name: &str, page: &str) -> Result<String, ApiError> {
    match state.store.page_token(name, page).await? {
        Some(t) => Ok(t.token),
        None => Err(ApiError::NotConfigured(format!(
            "no access token is stored for Page {page}: PUT \
             /api/v1/sources/{name}/graph/pages/{page}/token first"
        ))),
    }
}

/// `GET …/graph/pages/{page_id}/subscribed-apps`: the apps subscribed to a Page and their
/// fields.
#[utoipa::path(get, path = "/api/v1/sources/{source}/graph/pages/{page_id}/subscribed-apps", operation_id = "page_apps", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("page_id" = String, Path, description = "A Page id")), responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn page_apps(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&caller)?;
    let (source_name, page) = path.into_inner();
    let (name, _) = source(&state, &source_name)?;
    let page = node("page_id", &page)?;
    let token = page_token(&state, name, &page).await?;
    let answer = state
        .graph
        .call(
            Method::GET,
            &format!("{page}/subscribed_apps"),
            &[],
            Body::None,
            &token,
        )
        .await
        .map_err(ApiError::Graph)?;
    Ok(HttpResponse::Ok().json(answer))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageSubscribeInput {
    fields: Vec<String>,
}

/// `POST …/graph/pages/{page_id}/subscribed-apps`: subscribes the app to a Page's fields.
#[utoipa::path(post, path = "/api/v1/sources/{source}/graph/pages/{page_id}/subscribed-apps", operation_id = "page_subscribe", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("page_id" = String, Path, description = "A Page id")), request_body = PageSubscribeInput, responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn page_subscribe(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    input: ApiJson<PageSubscribeInput>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, page) = path.into_inner();
    let (name, _) = source(&state, &source_name)?;
    let page = node("page_id", &page)?;
    let input = input.into_inner();
    let fields = field_list(&input.fields).map_err(|p| ApiError::invalid("fields", p))?;
    let token = page_token(&state, name, &page).await?;
    let what = json!({"subscribed_fields": input.fields});
    let started = actor.start(state.store.as_ref(), &page, "", what).await?;
    let result = state
        .graph
        .call(
            Method::POST,
            &format!("{page}/subscribed_apps"),
            &[],
            Body::Form(vec![("subscribed_fields", fields)]),
            &token,
        )
        .await;
    Ok(ended(&state, started, result).await)
}

/// `DELETE …/graph/pages/{page_id}/subscribed-apps`: unsubscribes the app from a Page.
#[utoipa::path(delete, path = "/api/v1/sources/{source}/graph/pages/{page_id}/subscribed-apps", operation_id = "page_unsubscribe", tag = "graph", params(("source" = String, Path, description = "A configured source"), ("page_id" = String, Path, description = "A Page id")), responses((status = 200, description = "Meta's answer", body = Object), (status = 502, description = "Meta refused or did not answer", body = crate::http::openapi::ErrorBody), crate::http::openapi::Errors))]
pub async fn page_unsubscribe(
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    admin_only(&actor.caller)?;
    let (source_name, page) = path.into_inner();
    let (name, _) = source(&state, &source_name)?;
    let page = node("page_id", &page)?;
    let token = page_token(&state, name, &page).await?;
    let started = actor
        .start(state.store.as_ref(), &page, "", json!({}))
        .await?;
    let result = state
        .graph
        .call(
            Method::DELETE,
            &format!("{page}/subscribed_apps"),
            &[],
            Body::None,
            &token,
        )
        .await;
    Ok(ended(&state, started, result).await)
}
