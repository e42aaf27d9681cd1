//! `/v1/keys`: the API keys of the caller's workspace (admin keys only).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use profiled_core::Scope;
use profiled_store::ApiKeyRecord;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::IssuedKey;

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    pub workspace_id: i64,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<ApiKeyRecord> for KeyView {
    fn from(k: ApiKeyRecord) -> Self {
        Self {
            id: k.id,
            name: k.name,
            scope: k.scope,
            workspace_id: k.workspace_id.0,
            created_at: k.created_at.to_string(),
            revoked_at: k.revoked_at.map(|t| t.to_string()),
        }
    }
}

/// A new key, with its text: shown once, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyView {
    #[serde(flatten)]
    pub key: KeyView,
    /// Send as `Authorization: Bearer <key>`.
    #[schema(example = "prf_0123456789abcdef_...")]
    pub secret: String,
}

impl From<IssuedKey> for IssuedKeyView {
    fn from(issued: IssuedKey) -> Self {
        Self {
            key: issued.record.into(),
            secret: issued.token.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    pub scope: Scope,
    /// A label for people; defaults to empty.
    #[serde(default)]
    pub name: String,
}

#[utoipa::path(
    get, path = "/v1/keys", tag = "keys",
    responses((status = 200, body = KeyList), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// List the workspace's keys, revoked ones included.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<KeyList>, ApiError> {
    let ws = caller.admin()?;
    let keys = state.service.list_keys(Some(ws)).await?;
    Ok(Json(KeyList {
        keys: keys.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    post, path = "/v1/keys", tag = "keys",
    request_body = CreateKey,
    responses((status = 201, body = IssuedKeyView), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Create a key in the caller's workspace.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<(StatusCode, Json<IssuedKeyView>), ApiError> {
    let ws = caller.admin()?;
    let issued = state.service.create_key(ws, body.scope, &body.name).await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Revoke a key of the caller's workspace. It stops working at once.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ws = caller.admin()?;
    state.service.revoke_key(Some(ws), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
