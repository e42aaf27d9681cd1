//! `/v1/workspaces` and `/v1/workspace`: tenants. A key sees only its own workspace.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use profiled_store::Workspace;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::keys::IssuedKeyView;
use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: i64,
    pub name: String,
    pub created_at: String,
}

impl From<Workspace> for WorkspaceView {
    fn from(w: Workspace) -> Self {
        Self {
            id: w.id.0,
            name: w.name,
            created_at: w.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    /// 1 to 63 lower-case letters, digits, `-` or `_`.
    #[schema(example = "acme")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWorkspace {
    pub workspace: WorkspaceView,
    /// The new workspace's first admin key. Its text is shown only here.
    pub admin_key: IssuedKeyView,
}

#[utoipa::path(
    get, path = "/v1/workspace", tag = "workspaces",
    responses((status = 200, body = WorkspaceView)),
    security(("api_key" = []))
)]
/// The workspace of the calling key.
pub async fn current(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WorkspaceView>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.workspace(ws).await?.into()))
}

#[utoipa::path(
    get, path = "/v1/workspaces", tag = "workspaces",
    responses((status = 200, body = WorkspaceList), (status = 403, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// The workspaces visible to the calling admin key: only its own.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WorkspaceList>, ApiError> {
    let ws = caller.admin()?;
    let workspace = state.service.workspace(ws).await?;
    Ok(Json(WorkspaceList {
        workspaces: vec![workspace.into()],
    }))
}

#[utoipa::path(
    post, path = "/v1/workspaces", tag = "workspaces",
    request_body = CreateWorkspace,
    responses(
        (status = 201, body = CreatedWorkspace),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Create a workspace with its first admin key (requires an admin key).
///
/// The calling key gains no access to the new workspace: only the returned key has it.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWorkspace>,
) -> Result<(StatusCode, Json<CreatedWorkspace>), ApiError> {
    caller.admin()?;
    let (workspace, key) = state.service.create_workspace(&body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWorkspace {
            workspace: workspace.into(),
            admin_key: key.into(),
        }),
    ))
}
