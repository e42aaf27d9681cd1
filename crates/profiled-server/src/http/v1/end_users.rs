//! `/v1/workspace/end-users`: what end users may see and change of their own profile, and
//! which other origins may send their cookie-authenticated writes (admin keys set it).

use axum::Json;
use axum::extract::State;

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::sessions::EndUserSettings;

#[utoipa::path(
    get, path = "/v1/workspace/end-users", tag = "end users",
    responses((status = 200, body = EndUserSettings)),
    security(("api_key" = []))
)]
/// What end users may see and change (by default: nothing writable, nothing hidden).
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<EndUserSettings>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.end_user_settings(ws).await?))
}

#[utoipa::path(
    put, path = "/v1/workspace/end-users", tag = "end users",
    request_body = EndUserSettings,
    responses((status = 200, body = EndUserSettings), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Set the writable and hidden property paths, and the allowed origins.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(settings): ApiJson<EndUserSettings>,
) -> Result<Json<EndUserSettings>, ApiError> {
    let ws = caller.admin()?;
    state.service.set_end_user_settings(ws, &settings).await?;
    Ok(Json(settings))
}
