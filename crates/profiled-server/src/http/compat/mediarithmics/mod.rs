//! mediarithmics' user point and profile import APIs under `/compat/mediarithmics`.
//!
//! A datamart (`{dm}`: the workspace's numeric id, or its name) is a workspace, a user point a
//! profile; identifiers are identities (`account:<compartment>` for a user account,
//! `email_hash`, `user_agent_id`), and UserProfiles live in the profile's properties (see
//! [`user_profiles`]). The token is a profiled key sent bare in `Authorization`. Answers are
//! wrapped as mediarithmics wraps them, `{"status": "ok", "data": ...}`, errors as
//! `{"status": "error", "error", "error_code"}`.

mod imports;
mod user_points;
pub mod user_profiles;

use axum::Router;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use profiled_core::WorkspaceId;
use serde_json::{Value, json};

use crate::http::AppState;
use crate::http::extract::Caller;
use crate::http::problem::ApiError;
use crate::service::ServiceError;

pub fn router() -> Router<AppState> {
    let profiles = get(user_points::get)
        .put(user_points::put)
        .delete(user_points::delete);
    Router::new()
        .route(
            "/v1/datamarts/{dm}/user_account_compartments",
            get(user_points::compartments),
        )
        .route("/v1/datamarts/{dm}/document_imports", post(imports::create))
        .route(
            "/v1/datamarts/{dm}/document_imports/{id}",
            get(imports::show),
        )
        .route(
            "/v1/datamarts/{dm}/document_imports/{id}/executions",
            post(imports::execute),
        )
        .route(
            "/v1/datamarts/{dm}/document_imports/{id}/executions/{execution}",
            get(imports::execution),
        )
        .route(
            "/v1/datamarts/{dm}/user_points/{selector}/user_profiles",
            profiles.clone(),
        )
        .route(
            "/v1/datamarts/{dm}/user_points/{selector}/user_profiles/{compartment}",
            profiles.clone(),
        )
        .route(
            "/v1/datamarts/{dm}/user_points/{selector}/user_profiles/{compartment}/{account}",
            profiles,
        )
        .fallback(|| async {
            MicsError::new(StatusCode::NOT_FOUND, "no such route").into_response()
        })
        .layer(axum::middleware::map_response(framework_errors))
}

/// An error in mediarithmics' shape.
#[derive(Debug)]
pub struct MicsError {
    status: StatusCode,
    message: String,
}

impl MicsError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

fn error_code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::PRECONDITION_FAILED => "PRECONDITION_FAILED",
        StatusCode::TOO_MANY_REQUESTS => "TOO_MANY_REQUESTS",
        s if s.is_server_error() => "INTERNAL_ERROR",
        _ => "ERROR",
    }
}

impl IntoResponse for MicsError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({
                "status": "error",
                "error": self.message,
                "error_code": error_code(self.status),
            })),
        )
            .into_response()
    }
}

impl From<ApiError> for MicsError {
    fn from(e: ApiError) -> Self {
        let (problem, _) = e.into_problem();
        let message = problem.summary();
        let status = match StatusCode::from_u16(problem.status) {
            // mediarithmics answers bad input with 400.
            Ok(StatusCode::UNPROCESSABLE_ENTITY) => StatusCode::BAD_REQUEST,
            Ok(status) => status,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, message)
    }
}

impl From<ServiceError> for MicsError {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

async fn framework_errors(response: Response) -> Response {
    if !super::is_framework_error(&response) {
        return response;
    }
    let status = response.status();
    MicsError::new(status, status.canonical_reason().unwrap_or("error")).into_response()
}

/// `{"status": "ok", "data": ...}`
fn ok(data: Value) -> Response {
    axum::Json(json!({"status": "ok", "data": data})).into_response()
}

/// A list, wrapped with its paging fields.
fn ok_list(items: Vec<Value>) -> Response {
    let count = items.len();
    axum::Json(json!({
        "status": "ok",
        "data": items,
        "count": count,
        "first_result": 0,
        "max_results": count,
        "total": count,
    }))
    .into_response()
}

/// The caller, checked against the datamart in the path: a key of another workspace is
/// refused.
pub struct Datamart {
    pub caller: Caller,
    /// The path's `{dm}`, as given.
    pub name: String,
}

impl Datamart {
    pub fn read(&self) -> Result<WorkspaceId, MicsError> {
        Ok(self.caller.read()?)
    }

    pub fn write(&self) -> Result<WorkspaceId, MicsError> {
        Ok(self.caller.write()?)
    }
}

impl FromRequestParts<AppState> for Datamart {
    type Rejection = MicsError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, MicsError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                MicsError::new(
                    StatusCode::UNAUTHORIZED,
                    "send the API token as `Authorization: <token>`",
                )
            })?;
        let key = state.service.authenticate(token).await?.ok_or_else(|| {
            MicsError::new(
                StatusCode::UNAUTHORIZED,
                "the API token is not valid: unknown, revoked or mistyped",
            )
        })?;
        let caller = Caller::from_key(key);
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| MicsError::bad("the path is not valid"))?;
        let name = params
            .iter()
            .find(|(k, _)| *k == "dm")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| MicsError::bad("the path names no datamart"))?;
        let id = match name.parse::<i64>() {
            Ok(id) => Some(WorkspaceId(id)),
            Err(_) => match state.service.workspace_by_name(&name).await {
                Ok(workspace) => Some(workspace.id),
                Err(ServiceError::NotFound(_)) => None,
                Err(e) => return Err(e.into()),
            },
        };
        if !id.is_some_and(|id| caller.belongs_to(id)) {
            return Err(MicsError::new(
                StatusCode::FORBIDDEN,
                format!("this token cannot reach datamart `{name}`"),
            ));
        }
        Ok(Datamart { caller, name })
    }
}
