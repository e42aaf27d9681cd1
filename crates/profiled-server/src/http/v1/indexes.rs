//! `/v1/workspace/indexes`: the property paths a workspace declares indexed (admin keys).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use profiled_core::filter::ValueType;
use profiled_store::PropertyIndex;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct IndexView {
    #[schema(example = "properties.plan")]
    pub field: String,
    #[serde(rename = "type")]
    pub value_type: ValueType,
    pub created_at: String,
}

impl From<PropertyIndex> for IndexView {
    fn from(i: PropertyIndex) -> Self {
        Self {
            field: i.field.to_string(),
            value_type: i.value_type,
            created_at: i.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IndexList {
    pub indexes: Vec<IndexView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareIndex {
    /// A `properties.<path>` or `computed.<path>` field.
    #[schema(example = "properties.plan")]
    pub field: String,
    /// The type of values queries compare it with.
    #[serde(rename = "type")]
    pub value_type: ValueType,
}

#[utoipa::path(
    get, path = "/v1/workspace/indexes", tag = "search",
    responses((status = 200, body = IndexList), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// The workspace's declared indexes.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<IndexList>, ApiError> {
    let ws = caller.admin()?;
    let indexes = state.service.indexes(ws).await?;
    Ok(Json(IndexList {
        indexes: indexes.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    post, path = "/v1/workspace/indexes", tag = "search",
    request_body = DeclareIndex,
    responses(
        (status = 200, description = "Declared (or its type replaced) and built", body = IndexView),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Declare a property path indexed; the index is built before the response.
///
/// Equality, range and sort on the path then use the index; undeclared paths are still
/// searchable, by scanning.
pub async fn declare(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<DeclareIndex>,
) -> Result<Json<IndexView>, ApiError> {
    let ws = caller.admin()?;
    let index = state
        .service
        .declare_index(ws, &body.field, body.value_type)
        .await?;
    Ok(Json(index.into()))
}

#[utoipa::path(
    delete, path = "/v1/workspace/indexes/{field}", tag = "search",
    params(("field" = String, Path, description = "The declared field, e.g. `properties.plan`")),
    responses((status = 204, description = "Dropped"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Drop a declared index.
pub async fn drop(
    State(state): State<AppState>,
    caller: Caller,
    Path(field): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ws = caller.admin()?;
    state.service.drop_index(ws, &field).await?;
    Ok(StatusCode::NO_CONTENT)
}
