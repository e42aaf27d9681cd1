//! `/v1/workspace/schema`: the JSON Schema and required fields every write of profile
//! properties must satisfy (admin keys set it; any reading key reads it).

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use profiled_core::Violation;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::schema::SchemaBody;

#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaView {
    /// The JSON Schema for `properties`; null when none is set.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    pub required: Vec<String>,
    /// When it was set; null when no schema is set.
    pub updated_at: Option<String>,
}

async fn view(state: &AppState, ws: profiled_core::WorkspaceId) -> Result<SchemaView, ApiError> {
    Ok(match state.service.schema(ws).await? {
        Some((body, at)) => SchemaView {
            schema: body.schema,
            required: body.required,
            updated_at: Some(at.to_string()),
        },
        None => SchemaView {
            schema: None,
            required: Vec::new(),
            updated_at: None,
        },
    })
}

#[utoipa::path(
    get, path = "/v1/workspace/schema", tag = "workspaces",
    responses((status = 200, body = SchemaView)),
    security(("api_key" = []))
)]
/// The workspace's profile schema.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SchemaView>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(view(&state, ws).await?))
}

#[utoipa::path(
    put, path = "/v1/workspace/schema", tag = "workspaces",
    request_body = SchemaBody,
    responses(
        (status = 200, body = SchemaView),
        (status = 422, description = "Not a usable JSON Schema (or it refers to another document), or a bad path in `required`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Set the profile schema: a JSON Schema (draft 2020-12) for `properties` and required paths.
///
/// Every write that changes a profile's properties — upserts, patches, imports, merges, the
/// end user's own edits, every compat API — must then satisfy it, or is refused with each
/// failing pointer. Stored profiles are not touched; use `POST /v1/workspace/schema/check`
/// first to see which would fail.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SchemaBody>,
) -> Result<Json<SchemaView>, ApiError> {
    let ws = caller.admin()?;
    state.service.set_schema(ws, Some(&body)).await?;
    Ok(Json(view(&state, ws).await?))
}

#[utoipa::path(
    delete, path = "/v1/workspace/schema", tag = "workspaces",
    responses((status = 204, description = "Removed; properties are free again"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Remove the profile schema.
pub async fn delete(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let ws = caller.admin()?;
    if state.service.set_schema(ws, None).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(crate::service::ServiceError::NotFound("a profile schema".into()).into())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckParams {
    /// How many failing profiles to list (0 to 1000, default 100).
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailingProfile {
    pub id: String,
    pub violations: Vec<Violation>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SchemaCheckView {
    /// Profiles checked: every profile of the workspace.
    pub checked: u64,
    /// How many would be refused by their next property write.
    pub failing: u64,
    /// The first failing profiles.
    pub profiles: Vec<FailingProfile>,
}

#[utoipa::path(
    post, path = "/v1/workspace/schema/check", tag = "workspaces",
    params(CheckParams),
    request_body = SchemaBody,
    responses(
        (status = 200, body = SchemaCheckView),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Try a proposed schema on the stored profiles: which would fail it. Nothing changes.
pub async fn check(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CheckParams>,
    ApiJson(body): ApiJson<SchemaBody>,
) -> Result<Json<SchemaCheckView>, ApiError> {
    let ws = caller.admin()?;
    let limit = params.limit.unwrap_or(100);
    if limit > 1000 {
        return Err(ApiError::invalid("/limit", "list at most 1000 profiles"));
    }
    let check = state.service.check_schema(ws, &body, limit).await?;
    Ok(Json(SchemaCheckView {
        checked: check.checked,
        failing: check.failing,
        profiles: check
            .examples
            .into_iter()
            .map(|(id, violations)| FailingProfile {
                id: id.0,
                violations,
            })
            .collect(),
    }))
}
