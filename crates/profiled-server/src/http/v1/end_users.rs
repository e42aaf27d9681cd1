//! `/v1/workspace/end-users`: what end users may see and change of their own profile, and
//! which other origins may send their cookie-authenticated writes (admin keys set it).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::ServiceError;
use crate::service::compat_settings::{AkinonSettings, InkeepMapping, MediarithmicsSettings};
use crate::service::identity_provider::IdentityProvider;
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

#[utoipa::path(
    get, path = "/v1/workspace/identity-provider", tag = "end users",
    responses((status = 200, body = IdentityProvider), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// The identity provider whose JWTs open sessions (the HS256 secret shown as `********`).
pub async fn get_identity_provider(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<IdentityProvider>, ApiError> {
    let ws = caller.admin()?;
    state
        .service
        .identity_provider(ws)
        .await?
        .map(Json)
        .ok_or_else(|| ServiceError::NotFound("an identity provider".into()).into())
}

#[utoipa::path(
    put, path = "/v1/workspace/identity-provider", tag = "end users",
    request_body = IdentityProvider,
    responses((status = 204, description = "Trusted from now on"), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Trust an identity provider: `POST /v1/sessions/exchange` then opens sessions for its JWTs.
pub async fn put_identity_provider(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(idp): ApiJson<IdentityProvider>,
) -> Result<StatusCode, ApiError> {
    let ws = caller.admin()?;
    state.service.set_identity_provider(ws, Some(&idp)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete, path = "/v1/workspace/identity-provider", tag = "end users",
    responses((status = 204, description = "No provider is trusted any more"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Stop trusting the identity provider (sessions already opened stay until revoked).
pub async fn delete_identity_provider(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    let ws = caller.admin()?;
    if state.service.set_identity_provider(ws, None).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServiceError::NotFound("an identity provider".into()).into())
    }
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CodesParams {
    /// Only the codes sent for this profile.
    pub profile_id: Option<String>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SentCodes {
    /// Newest first.
    pub codes: Vec<crate::service::verification::SentCode>,
}

#[utoipa::path(
    get, path = "/v1/dev/verification-codes", tag = "end users",
    params(CodesParams),
    responses((status = 200, body = SentCodes), (status = 404, description = "The development sender is not configured", body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// The verification codes the development sender sent (only while it is configured).
pub async fn development_codes(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Query(params): axum::extract::Query<CodesParams>,
) -> Result<Json<SentCodes>, ApiError> {
    let ws = caller.admin()?;
    let codes = state
        .service
        .development_codes(ws, params.profile_id.as_deref())
        .ok_or_else(|| {
            ServiceError::NotFound("this route (the development sender is not configured)".into())
        })?;
    Ok(Json(SentCodes { codes }))
}

#[utoipa::path(
    get, path = "/v1/workspace/compat/inkeep", tag = "workspaces",
    responses((status = 200, body = InkeepMapping)),
    security(("api_key" = []))
)]
/// Which properties Inkeep's `attributes` and `timezone` are (`/compat/inkeep`).
pub async fn get_inkeep_mapping(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<InkeepMapping>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.inkeep_mapping(ws).await?))
}

#[utoipa::path(
    put, path = "/v1/workspace/compat/inkeep", tag = "workspaces",
    request_body = InkeepMapping,
    responses((status = 200, body = InkeepMapping), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Map Inkeep's `attributes` and `timezone` onto other properties.
pub async fn put_inkeep_mapping(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(mapping): ApiJson<InkeepMapping>,
) -> Result<Json<InkeepMapping>, ApiError> {
    let ws = caller.admin()?;
    state.service.set_inkeep_mapping(ws, &mapping).await?;
    Ok(Json(mapping))
}

#[utoipa::path(
    get, path = "/v1/workspace/compat/mediarithmics", tag = "workspaces",
    responses((status = 200, body = MediarithmicsSettings)),
    security(("api_key" = []))
)]
/// The user account compartments mediarithmics' API sees (`/compat/mediarithmics`).
pub async fn get_mediarithmics_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<MediarithmicsSettings>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.mediarithmics_settings(ws).await?))
}

#[utoipa::path(
    put, path = "/v1/workspace/compat/mediarithmics", tag = "workspaces",
    request_body = MediarithmicsSettings,
    responses((status = 200, body = MediarithmicsSettings), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Set the compartments: positive unique ids, exactly one the default.
pub async fn put_mediarithmics_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(settings): ApiJson<MediarithmicsSettings>,
) -> Result<Json<MediarithmicsSettings>, ApiError> {
    let ws = caller.admin()?;
    state
        .service
        .set_mediarithmics_settings(ws, &settings)
        .await?;
    Ok(Json(settings))
}

#[utoipa::path(
    get, path = "/v1/workspace/compat/akinon", tag = "workspaces",
    responses((status = 200, body = AkinonSettings)),
    security(("api_key" = []))
)]
/// How `/compat/akinon` behaves: required fields, phone verification, the loyalty service
/// (its secret masked).
pub async fn get_akinon_settings(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AkinonSettings>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.akinon_settings(ws).await?.masked()))
}

#[utoipa::path(
    put, path = "/v1/workspace/compat/akinon", tag = "workspaces",
    request_body = AkinonSettings,
    responses((status = 200, body = AkinonSettings), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Set Akinon's `USER_REQUIRED_FIELDS`, phone verification and loyalty service.
pub async fn put_akinon_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(settings): ApiJson<AkinonSettings>,
) -> Result<Json<AkinonSettings>, ApiError> {
    let ws = caller.admin()?;
    Ok(Json(state.service.set_akinon_settings(ws, settings).await?))
}
