//! Tenants and their API keys (`/api/v1/tenants`). Only the admin creates them; a tenant key
//! is shown once, when it is made, and stored as a hash.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::auth::{Admin, Caller, TENANT_KEY_PREFIX, key_hash};
use super::error::ApiError;
use crate::delivery::endpoint::{ApiKey, Tenant, new_id};
use crate::time::unix_ms;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    name: String,
}

pub async fn create(
    _: Admin,
    state: web::Data<AppState>,
    input: web::Json<TenantInput>,
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
    state.delivery.put_tenant(&tenant).await?;
    Ok(HttpResponse::Created().json(tenant))
}

pub async fn list(_: Admin, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let items = state.delivery.list_tenants().await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

pub async fn get(
    caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match state.delivery.get_tenant(&id).await? {
        Some(t) if caller.owns(&t.id) => Ok(HttpResponse::Ok().json(t)),
        _ => Err(ApiError::NotFound("tenant")),
    }
}

pub async fn create_key(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = state
        .delivery
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
    state.delivery.put_api_key(&hash, &record).await?;
    Ok(HttpResponse::Created().json(json!({
        "id": record.id,
        "tenant_id": record.tenant_id,
        "created_at": record.created_at,
        "key": key,
        "note": "the key is shown only now; hookd keeps a hash of it",
    })))
}

pub async fn delete_key(
    _: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant_id, key_id) = path.into_inner();
    if state.delivery.delete_api_key(&tenant_id, &key_id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound("key"))
    }
}
