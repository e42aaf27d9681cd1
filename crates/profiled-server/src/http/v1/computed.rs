//! `/v1/computed`: computed properties a workspace defines over its events (admin keys
//! define them; any reading key lists them).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::{DefinitionBody, ServiceError, StoredDefinition};

#[derive(Debug, Serialize, ToSchema)]
pub struct ComputedView {
    /// The profile shows the value at `computed.<key>`.
    #[schema(example = "purchases_7d")]
    pub key: String,
    #[serde(flatten)]
    pub definition: DefinitionBody,
    pub created_at: String,
    pub updated_at: String,
}

impl From<StoredDefinition> for ComputedView {
    fn from(d: StoredDefinition) -> Self {
        Self {
            key: d.definition.key.clone(),
            definition: d.body(),
            created_at: d.created_at.to_string(),
            updated_at: d.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComputedList {
    pub computed: Vec<ComputedView>,
}

#[utoipa::path(
    get, path = "/v1/computed", tag = "events",
    responses((status = 200, body = ComputedList)),
    security(("api_key" = []))
)]
/// The workspace's computed property definitions.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ComputedList>, ApiError> {
    let ws = caller.read()?;
    let definitions = state.service.computed_definitions(ws).await?;
    Ok(Json(ComputedList {
        computed: definitions.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get, path = "/v1/computed/{key}", tag = "events",
    params(("key" = String, Path, description = "The computed property's key")),
    responses((status = 200, body = ComputedView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// One computed property definition.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<ComputedView>, ApiError> {
    let ws = caller.read()?;
    let definition = state
        .service
        .computed_definitions(ws)
        .await?
        .into_iter()
        .find(|d| d.definition.key == key)
        .ok_or_else(|| ServiceError::NotFound(format!("computed property `{key}`")))?;
    Ok(Json(definition.into()))
}

#[utoipa::path(
    put, path = "/v1/computed/{key}", tag = "events",
    params(("key" = String, Path, description = "Lower-case letters, digits and `_`; not a built-in key")),
    request_body = DefinitionBody,
    responses(
        (status = 201, description = "Defined", body = ComputedView),
        (status = 200, description = "Replaced", body = ComputedView),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Define (or redefine) a computed property: an aggregate of an event property.
///
/// `count`, `sum`, `min`, `max`, `first` or `last` of `property` over the events named
/// `event` (every event when absent), optionally only those of the last `window`. Profiles
/// show it from their next event on.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<DefinitionBody>,
) -> Result<Response, ApiError> {
    let ws = caller.admin()?;
    let (definition, created) = state.service.define_computed(ws, &key, &body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ComputedView::from(definition))).into_response())
}

#[utoipa::path(
    delete, path = "/v1/computed/{key}", tag = "events",
    params(("key" = String, Path, description = "The computed property's key")),
    responses((status = 204, description = "Removed; profiles keep their last value"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Remove a computed property definition.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ws = caller.admin()?;
    state.service.undefine_computed(ws, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
