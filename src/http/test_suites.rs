//! Test suites: `POST /api/v1/test-suites` saves one (a source, an account, the endpoints to
//! deliver to, the event types), `POST …/{id}/run` sends one signed, Meta-shaped sample of
//! each type through hookd's own ingress, `GET …/{id}/runs/{run_id}` shows per type whether it
//! was accepted, split into its type, routed and delivered.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::audit::Actor;
use super::auth::Caller;
use super::error::ApiError;
use super::json::ApiJson;
use super::{AppState, JournalWriter};
use crate::meta::catalogue::{self, CATALOGUE};
use crate::model::new_id;
use crate::model::test_suite::{RUNS_KEPT, SentSample, TestRun, TestSuite};
use crate::store::{EventQuery, Page, StoredEvent};
use crate::suites::samples::{body_for, object_of};
use crate::suites::verdict::{self, SampleEvent};
use crate::time::unix_ms;

/// The webhook objects a suite can be for.
const OBJECTS: [&str; 3] = ["whatsapp_business_account", "page", "instagram"];
/// Endpoints one suite delivers to.
const ENDPOINTS_MAX: usize = 10;
/// Events a results read looks through for a run's samples (newest first, from its start).
const RESULTS_SCAN: usize = 4_000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteInput {
    name: Option<String>,
    source: String,
    object: String,
    account_id: String,
    endpoint_ids: Vec<String>,
    types: Option<Vec<String>>,
    /// The admin's suite for a tenant; a tenant key's suites are its own.
    tenant_id: Option<String>,
}

fn suite_tenant(caller: &Caller, asked: Option<String>) -> Result<String, ApiError> {
    match (caller, asked) {
        (Caller::Tenant(own), None) => Ok(own.clone()),
        (Caller::Tenant(own), Some(t)) if &t == own => Ok(t),
        (Caller::Tenant(_), Some(_)) => Err(ApiError::invalid(
            "tenant_id",
            "a tenant key creates its own suites",
        )),
        (Caller::Admin, asked) => Ok(asked.unwrap_or_default()),
    }
}

/// The catalogue types of `object`, or the asked ones when each is of it.
fn suite_types(object: &str, asked: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let of_object = |t: &catalogue::EventType| object_of(t).as_deref() == Some(object);
    let Some(asked) = asked else {
        return Ok(CATALOGUE
            .iter()
            .filter(|t| of_object(t))
            .map(|t| t.name.to_string())
            .collect());
    };
    if asked.is_empty() {
        return Err(ApiError::invalid(
            "types",
            "name at least one, or leave it out for all",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(asked.len());
    for name in asked {
        match catalogue::find(&name) {
            Some(t) if of_object(t) => {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
            Some(_) => {
                return Err(ApiError::invalid(
                    "types",
                    format!("{name} is not a type of {object} webhooks"),
                ));
            }
            None => {
                return Err(ApiError::invalid(
                    "types",
                    format!("{name} is not in the catalogue (GET /api/v1/event-types)"),
                ));
            }
        }
    }
    Ok(out)
}

/// A tenant runs suites only for the accounts it owns.
async fn check_account(
    state: &AppState,
    tenant_id: &str,
    account_id: &str,
) -> Result<(), ApiError> {
    if tenant_id.is_empty() {
        return Ok(());
    }
    let owners = state.store.account_owners().await?;
    if owners.get(account_id).map(String::as_str) == Some(tenant_id) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "a tenant's suite runs only for an account the tenant owns",
        ))
    }
}

/// `POST /api/v1/test-suites` (`201`).
#[utoipa::path(post, path = "/api/v1/test-suites", operation_id = "test_suites_create", tag = "test suites", request_body = SuiteInput, responses((status = 201, description = "The suite", body = Object), crate::http::openapi::Errors))]
pub async fn create(
    actor: Actor,
    state: web::Data<AppState>,
    input: ApiJson<SuiteInput>,
) -> Result<HttpResponse, ApiError> {
    let input = input.into_inner();
    let tenant_id = suite_tenant(&actor.caller, input.tenant_id)?;
    if !tenant_id.is_empty() && state.store.get_tenant(&tenant_id).await?.is_none() {
        return Err(ApiError::invalid(
            "tenant_id",
            format!("no tenant {tenant_id}"),
        ));
    }
    let Some((source, _)) = state.source(&input.source) else {
        return Err(ApiError::invalid("source", "not a configured source"));
    };
    if !OBJECTS.contains(&input.object.as_str()) {
        return Err(ApiError::invalid(
            "object",
            format!("one of {}", OBJECTS.join(", ")),
        ));
    }
    let account_id = input.account_id.trim().to_string();
    if account_id.is_empty() || account_id.len() > 64 {
        return Err(ApiError::invalid(
            "account_id",
            "a Meta account id (1 to 64 characters)",
        ));
    }
    check_account(&state, &tenant_id, &account_id).await?;
    if input.endpoint_ids.is_empty() || input.endpoint_ids.len() > ENDPOINTS_MAX {
        return Err(ApiError::invalid(
            "endpoint_ids",
            format!("1 to {ENDPOINTS_MAX} endpoints to deliver to"),
        ));
    }
    let endpoints = state.store.list_endpoints().await?;
    for id in &input.endpoint_ids {
        if !endpoints
            .iter()
            .any(|l| &l.endpoint.id == id && l.endpoint.tenant_id == tenant_id)
        {
            return Err(ApiError::invalid(
                "endpoint_ids",
                format!("{id} is not an endpoint of the suite's owner"),
            ));
        }
    }
    let types = suite_types(&input.object, input.types)?;
    let name = input
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("{} {account_id}", input.object));
    if name.len() > 200 {
        return Err(ApiError::invalid("name", "at most 200 bytes"));
    }
    let suite = TestSuite {
        id: new_id("ts_", 8),
        name,
        tenant_id: tenant_id.clone(),
        source: source.to_string(),
        object: input.object,
        account_id,
        endpoint_ids: input.endpoint_ids,
        types,
        created_at: unix_ms(),
        runs: Vec::new(),
    };
    let mut changes = serde_json::to_value(&suite).unwrap_or_default();
    if let Some(map) = changes.as_object_mut() {
        map.remove("runs");
    }
    let audit = actor.record(&suite.id, &tenant_id, changes);
    state.store.put_test_suite(&suite, &audit).await?;
    Ok(HttpResponse::Created().json(view(&suite)))
}

/// A suite as the API shows it: its runs by id and time (results are read per run).
fn view(s: &TestSuite) -> serde_json::Value {
    json!({
        "id": s.id,
        "name": s.name,
        "tenant_id": s.tenant_id,
        "source": s.source,
        "object": s.object,
        "account_id": s.account_id,
        "endpoint_ids": s.endpoint_ids,
        "types": s.types,
        "created_at": s.created_at,
        "runs": s.runs.iter().map(|r| json!({
            "id": r.id,
            "started_at": r.started_at,
            "sent": r.sent.len(),
            "accepted": r.sent.iter().filter(|x| x.journal_id.is_some()).count(),
        })).collect::<Vec<_>>(),
    })
}

async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<TestSuite, ApiError> {
    match state.store.test_suite(id).await? {
        Some(s) if caller.owns(&s.tenant_id) => Ok(s),
        _ => Err(ApiError::NotFound("test suite")),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// The previous page\'s `next_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
    /// Items per page (default 50, at most `api.max_page_size`).
    #[param(minimum = 1)]
    limit: Option<usize>,
}

/// `GET /api/v1/test-suites`: the caller's suites, oldest first.
#[utoipa::path(get, path = "/api/v1/test-suites", operation_id = "test_suites_list", tag = "test suites", params(ListParams), responses((status = 200, description = "The caller's suites, oldest first", body = Object), crate::http::openapi::Errors))]
pub async fn list(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::api::page_size(params.limit, state.settings.api.max_page_size)?;
    let mine: Vec<TestSuite> = state
        .store
        .test_suites()
        .await?
        .into_iter()
        .filter(|s| caller.owns(&s.tenant_id))
        .collect();
    let page = Page::of(mine, |s| &s.id, params.cursor.as_deref(), limit)
        .ok_or_else(|| ApiError::BadParameter("cursor", "names no suite".into()))?;
    Ok(HttpResponse::Ok().json(json!({
        "items": page.items.iter().map(view).collect::<Vec<_>>(),
        "has_more": page.next_cursor.is_some(),
        "next_cursor": page.next_cursor,
    })))
}

/// `GET /api/v1/test-suites/{id}`.
#[utoipa::path(get, path = "/api/v1/test-suites/{id}", operation_id = "test_suites_get", tag = "test suites", params(("id" = String, Path, description = "Its id")), responses((status = 200, description = "The suite with its latest runs", body = Object), crate::http::openapi::Errors))]
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let suite = owned(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok().json(view(&suite)))
}

/// `DELETE /api/v1/test-suites/{id}` (`204`).
#[utoipa::path(delete, path = "/api/v1/test-suites/{id}", operation_id = "test_suites_delete", tag = "test suites", params(("id" = String, Path, description = "Its id")), responses((status = 204, description = "Deleted"), crate::http::openapi::Errors))]
pub async fn delete(
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let suite = owned(&state, &actor.caller, &id).await?;
    let audit = actor.record(&suite.id, &suite.tenant_id, json!({}));
    if state.store.delete_test_suite(&suite.id, &audit).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("test suite"))
    }
}

/// `POST /api/v1/test-suites/{id}/run` (`202`): every sample is journaled (or refused) by the
/// time it answers; the results follow at `GET …/runs/{run_id}`.
#[utoipa::path(post, path = "/api/v1/test-suites/{id}/run", operation_id = "run", tag = "test suites", params(("id" = String, Path, description = "Its id")), responses((status = 202, description = "Every sample journaled or refused; results follow", body = Object), crate::http::openapi::Errors))]
pub async fn run(
    actor: Actor,
    state: web::Data<AppState>,
    writer: Option<web::Data<JournalWriter>>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut suite = owned(&state, &actor.caller, &id).await?;
    check_account(&state, &suite.tenant_id, &suite.account_id).await?;
    let writer = writer.ok_or_else(|| {
        ApiError::NotConfigured("this listener does not journal webhooks (server.listen)".into())
    })?;
    let run_id = new_id("run_", 8);
    let started_at = unix_ms();
    let source = suite.source.as_str();
    let sends = suite.types.iter().enumerate().map(|(n, name)| {
        let (state, writer) = (&state, &writer);
        let request_id = crate::suites::request_id(&suite.id, &run_id, n);
        let body = catalogue::find(name).map(|t| body_for(t, &suite.account_id));
        async move {
            let answer = match body {
                Some(Ok(body)) => {
                    super::ingress::accept_sample(
                        state,
                        writer,
                        source,
                        request_id,
                        Bytes::from(body),
                    )
                    .await
                }
                Some(Err(e)) => Err((
                    actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                    e.to_string(),
                )),
                None => Err((
                    actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{name} is no longer in the catalogue"),
                )),
            };
            match answer {
                Ok(journal_id) => SentSample {
                    event_type: name.clone(),
                    status: 200,
                    journal_id: Some(journal_id),
                    error: None,
                },
                Err((status, error)) => SentSample {
                    event_type: name.clone(),
                    status: status.as_u16(),
                    journal_id: None,
                    error: Some(error),
                },
            }
        }
    });
    // Together, so the journal writer batches them as it batches Meta's requests.
    let sent = futures_util::future::join_all(sends).await;
    let run = TestRun {
        id: run_id,
        started_at,
        sent,
    };
    let accepted = run.sent.iter().filter(|s| s.journal_id.is_some()).count();
    suite.runs.insert(0, run.clone());
    suite.runs.truncate(RUNS_KEPT);
    let audit = actor.record(
        &suite.id,
        &suite.tenant_id,
        json!({"run_id": run.id, "sent": run.sent.len(), "accepted": accepted}),
    );
    state.store.put_test_suite(&suite, &audit).await?;
    Ok(HttpResponse::Accepted().json(json!({
        "id": run.id,
        "suite_id": suite.id,
        "started_at": run.started_at,
        "sent": run.sent,
        "results": format!("/api/v1/test-suites/{}/runs/{}", suite.id, run.id),
    })))
}

/// `GET /api/v1/test-suites/{id}/runs/{run_id}`: per type, what became of its sample now.
#[utoipa::path(get, path = "/api/v1/test-suites/{id}/runs/{run_id}", operation_id = "results", tag = "test suites", params(("id" = String, Path, description = "Its id"), ("run_id" = String, Path, description = "A run id")), responses((status = 200, description = "Per type, what became of its sample", body = crate::http::openapi::RunResults), crate::http::openapi::Errors))]
pub async fn results(
    caller: Caller,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, run_id) = path.into_inner();
    let suite = owned(&state, &caller, &id).await?;
    let run = suite
        .runs
        .iter()
        .find(|r| r.id == run_id)
        .ok_or(ApiError::NotFound("test run"))?;
    let mut by_journal = events_of_run(&state, &suite, run).await?;
    let age = unix_ms().saturating_sub(run.started_at);
    let mut results = Vec::with_capacity(run.sent.len());
    for sent in &run.sent {
        let events = sent
            .journal_id
            .as_ref()
            .and_then(|j| by_journal.remove(j))
            .unwrap_or_default();
        let mut sample_events = Vec::with_capacity(events.len());
        for e in events {
            let deliveries = super::api::event_deliveries(&state, &e, &suite.endpoint_ids).await?;
            sample_events.push(SampleEvent {
                id: e.id,
                event_type: e.event_type,
                deliveries,
            });
        }
        results.push(verdict::judge(sent, sample_events, age));
    }
    Ok(HttpResponse::Ok().json(json!({
        "id": run.id,
        "suite_id": suite.id,
        "started_at": run.started_at,
        "summary": verdict::summarise(&results),
        "results": results,
    })))
}

/// The run's events by journal id, oldest first: the account's events since the run began,
/// read newest first up to [`RESULTS_SCAN`].
async fn events_of_run(
    state: &AppState,
    suite: &TestSuite,
    run: &TestRun,
) -> Result<HashMap<String, Vec<StoredEvent>>, ApiError> {
    let wanted: Vec<&str> = run
        .sent
        .iter()
        .filter_map(|s| s.journal_id.as_deref())
        .collect();
    let mut found: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    let mut cursor = None;
    let mut read = 0;
    while read < RESULTS_SCAN {
        let page = state
            .store
            .list_events(&EventQuery {
                account_id: Some(suite.account_id.clone()),
                from_ms: Some(run.started_at),
                cursor,
                limit: 200,
                ..EventQuery::default()
            })
            .await?;
        read += page.items.len().max(1);
        for e in page.items {
            if wanted.contains(&e.journal_id.as_str()) {
                found.entry(e.journal_id.clone()).or_default().insert(0, e);
            }
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(found)
}
