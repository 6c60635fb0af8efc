//! Tenants, their API keys and their Meta accounts (`/api/v1/tenants`). Only the admin
//! creates them and assigns accounts; a tenant key is shown once, when it is made, and stored
//! as a hash. A tenant's endpoints receive only events of the accounts it owns.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::audit::Actor;
use super::auth::{Admin, Caller, TENANT_KEY_PREFIX, key_hash};
use super::error::ApiError;
use super::json::ApiJson;
use crate::delivery::endpoint::check_account_ids;
use crate::model::{AccountOwners, ApiKey, Tenant, new_id};
use crate::time::unix_ms;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    name: String,
}

#[utoipa::path(post, path = "/api/v1/tenants", operation_id = "tenants_create", tag = "tenants", request_body = TenantInput, responses((status = 201, description = "The tenant", body = Object), crate::http::openapi::Errors))]
pub async fn create(
    _: Admin,
    actor: Actor,
    state: web::Data<AppState>,
    input: ApiJson<TenantInput>,
) -> Result<HttpResponse, ApiError> {
    let name = input.into_inner().name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::invalid("name", "1 to 200 characters"));
    }
    let tenant = Tenant {
        id: new_id("t_", 8),
        name,
        created_at: unix_ms(),
    };
    let audit = actor.record(&tenant.id, &tenant.id, json!({ "name": tenant.name }));
    state.store.put_tenant(&tenant, &audit).await?;
    Ok(HttpResponse::Created().json(view(&tenant, &AccountOwners::new())))
}

/// A tenant with the accounts it owns.
fn view(tenant: &Tenant, owners: &AccountOwners) -> serde_json::Value {
    let mut accounts: Vec<&str> = owners
        .iter()
        .filter(|(_, t)| **t == tenant.id)
        .map(|(a, _)| a.as_str())
        .collect();
    accounts.sort_unstable();
    json!({
        "id": tenant.id,
        "name": tenant.name,
        "created_at": tenant.created_at,
        "account_ids": accounts,
    })
}

#[utoipa::path(get, path = "/api/v1/tenants", operation_id = "tenants_list", tag = "tenants", params(super::endpoints::PageParams), responses((status = 200, description = "Tenants", body = Object), crate::http::openapi::Errors))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    params: web::Query<super::endpoints::PageParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = super::api::page_size(params.limit, state.settings.api.max_page_size)?;
    let tenants = state.store.list_tenants().await?;
    let owners = state.store.account_owners().await?;
    let page = crate::store::Page::of(tenants, |t| &t.id, params.cursor.as_deref(), limit)
        .ok_or_else(|| ApiError::BadParameter("cursor", "no tenant has this id".into()))?;
    Ok(HttpResponse::Ok().json(crate::store::Page {
        items: page
            .items
            .iter()
            .map(|t| view(t, &owners))
            .collect::<Vec<_>>(),
        next_cursor: page.next_cursor.clone(),
    }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{id}", operation_id = "tenants_get", tag = "tenants", params(("id" = String, Path, description = "Its id")), responses((status = 200, description = "The tenant", body = Object), crate::http::openapi::Errors))]
pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = owned(&state, &caller, &id).await?;
    let owners = state.store.account_owners().await?;
    Ok(HttpResponse::Ok().json(view(&tenant, &owners)))
}

async fn owned(state: &AppState, caller: &Caller, id: &str) -> Result<Tenant, ApiError> {
    match state.store.get_tenant(id).await? {
        Some(t) if caller.owns(&t.id) => Ok(t),
        _ => Err(ApiError::NotFound("tenant")),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountsInput {
    /// Phone number ids, WhatsApp Business Account ids (covering their numbers), page ids,
    /// Instagram account ids.
    account_ids: Vec<String>,
}

/// Gives Meta accounts to a tenant. An account belongs to one tenant at most: one that
/// another tenant owns is a 409 and nothing changes.
#[utoipa::path(post, path = "/api/v1/tenants/{id}/accounts", operation_id = "add_accounts", tag = "tenants", params(("id" = String, Path, description = "Its id")), request_body = AccountsInput, responses((status = 200, description = "The tenant", body = Object), crate::http::openapi::Errors))]
pub async fn add_accounts(
    _: Admin,
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
    input: ApiJson<AccountsInput>,
) -> Result<HttpResponse, ApiError> {
    let tenant = owned(&state, &Caller::Admin, &id).await?;
    let accounts = input.into_inner().account_ids;
    if accounts.is_empty() {
        return Err(ApiError::invalid("account_ids", "at least one account id"));
    }
    check_account_ids(&accounts)?;
    let audit = actor.record(&tenant.id, &tenant.id, json!({ "account_ids": accounts }));
    if let Some(taken) = state
        .store
        .assign_accounts(&tenant.id, &accounts, &audit)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "account {taken} belongs to another tenant; remove it there first"
        )));
    }
    super::endpoints::refresh(&state).await;
    let owners = state.store.account_owners().await?;
    Ok(HttpResponse::Ok().json(view(&tenant, &owners)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{id}/accounts/{account_id}", operation_id = "remove_account", tag = "tenants", params(("id" = String, Path, description = "Its id"), ("account_id" = String, Path, description = "A Meta account id")), responses((status = 204, description = "Taken from the tenant"), crate::http::openapi::Errors))]
pub async fn remove_account(
    _: Admin,
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, account) = path.into_inner();
    let audit = actor.record(&account, &tenant_id, serde_json::Value::Null);
    if state
        .store
        .release_account(&tenant_id, &account, &audit)
        .await?
    {
        super::endpoints::refresh(&state).await;
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("account of this tenant"))
    }
}

#[utoipa::path(post, path = "/api/v1/tenants/{id}/keys", operation_id = "create_key", tag = "tenants", params(("id" = String, Path, description = "Its id")), responses((status = 201, description = "The key, shown once", body = Object), crate::http::openapi::Errors))]
pub async fn create_key(
    _: Admin,
    actor: Actor,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = state
        .store
        .get_tenant(&id)
        .await?
        .ok_or(ApiError::NotFound("tenant"))?;
    let key = new_id(TENANT_KEY_PREFIX, 24);
    let hash = key_hash(&key);
    let record = ApiKey {
        id: format!("key_{}", &hash[..12]),
        tenant_id: tenant.id,
        created_at: unix_ms(),
    };
    let audit = actor.record(&record.id, &record.tenant_id, serde_json::Value::Null);
    state.store.put_api_key(&hash, &record, &audit).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": record.id,
        "tenant_id": record.tenant_id,
        "created_at": record.created_at,
        "key": key,
        "note": "the key is shown only now; hookd keeps a hash of it",
    })))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{id}/keys/{key_id}", operation_id = "delete_key", tag = "tenants", params(("id" = String, Path, description = "Its id"), ("key_id" = String, Path, description = "A key id (`key_…`)")), responses((status = 204, description = "Revoked"), crate::http::openapi::Errors))]
pub async fn delete_key(
    _: Admin,
    actor: Actor,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, key_id) = path.into_inner();
    let audit = actor.record(&key_id, &tenant_id, serde_json::Value::Null);
    if state
        .store
        .delete_api_key(&tenant_id, &key_id, &audit)
        .await?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("key"))
    }
}
