//! `/v1/sessions`: the product's backend opens end-user sessions, and revokes them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use profiled_core::{ProfileId, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::end_user::{over_tls, session_cookie};
use crate::http::extract::{ApiJson, Caller, OriginTag};
use crate::http::problem::{ApiError, Problem};
use profiled_core::identity::IdentityMap;

/// Open a session for the end user an identity names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    /// One identity, `{kind: value}`; its profile is created (empty) if there is none.
    pub identity: IdentityMap,
    /// Seconds until it expires: 1 to 2,592,000 (30 days); a day when absent.
    #[schema(example = 3600)]
    pub ttl: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    pub id: String,
    /// The session token: `Authorization: Bearer <token>` or the session cookie. Shown once.
    pub token: String,
    /// Send it as `X-CSRF-Token` with writes authenticated by the cookie. Shown once.
    pub csrf_token: String,
    pub profile_id: String,
    pub expires_at: String,
}

/// Only keys that may read and write profiles open sessions: a session reads and writes one.
fn can_open_sessions(caller: &Caller) -> Result<profiled_core::WorkspaceId, ApiError> {
    let ws = caller.write()?;
    if matches!(caller.scope, Scope::ReadWrite | Scope::Admin) {
        Ok(ws)
    } else {
        Err(ApiError::Forbidden(
            "sessions are opened and revoked with a `read_write` or `admin` key".into(),
        ))
    }
}

#[utoipa::path(
    post, path = "/v1/sessions", tag = "sessions",
    request_body = SessionBody,
    responses(
        (status = 201, description = "Opened; the token also comes as the session cookie", body = SessionView),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Open an end-user session for an identity (from the product's backend).
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    headers: HeaderMap,
    ApiJson(body): ApiJson<SessionBody>,
) -> Result<Response, ApiError> {
    let ws = can_open_sessions(&caller)?;
    let mut identities = body.identity.parse("/identity", state.service.limits())?;
    if identities.len() != 1 {
        return Err(ApiError::invalid("/identity", "name exactly one identity"));
    }
    let ttl = body.ttl.map(jiff::SignedDuration::from_secs);
    let issued = state
        .service
        .create_session(ws, &caller.context(origin), identities.remove(0), ttl)
        .await?;
    Ok(opened(&state, &headers, issued))
}

#[utoipa::path(
    delete, path = "/v1/sessions/{id}", tag = "sessions",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Revoke a session: its token stops working at once.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ws = can_open_sessions(&caller)?;
    state.service.revoke_session(ws, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// How many live sessions were revoked.
    pub revoked: u64,
}

#[utoipa::path(
    delete, path = "/v1/profiles/{id}/sessions", tag = "sessions",
    params(("id" = String, Path, description = "Profile id")),
    responses((status = 200, body = Revoked), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Revoke every session of a profile (sign the end user out everywhere).
pub async fn revoke_all(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    let ws = can_open_sessions(&caller)?;
    let revoked = state
        .service
        .revoke_profile_sessions(ws, &ProfileId(id))
        .await?;
    Ok(Json(Revoked { revoked }))
}

/// Exchange a JWT from the workspace's identity provider for a session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeBody {
    /// The workspace's name.
    #[schema(example = "default")]
    pub workspace: String,
    /// The JWT (HS256 or RS256) whose `sub` names the end user.
    pub token: String,
}

#[utoipa::path(
    post, path = "/v1/sessions/exchange", tag = "sessions",
    request_body = ExchangeBody,
    responses(
        (status = 201, description = "Opened; the token also comes as the session cookie", body = SessionView),
        (status = 401, description = "The token does not check out, or the workspace trusts no identity provider", body = Problem, content_type = "application/problem+json"),
    )
)]
/// Open a session with a JWT from the workspace's own identity provider (no API key).
///
/// The signature (HS256 or RS256), `exp`, `nbf` and, when configured, `iss` and `aud` must
/// check out; `sub` names the end user (as a `user_id` unless configured otherwise).
pub async fn exchange(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ExchangeBody>,
) -> Result<Response, ApiError> {
    let issued = state
        .service
        .exchange_token(&body.workspace, &body.token)
        .await?
        .ok_or(ApiError::Unauthorized(
            "the token is not accepted: bad signature, expired, wrong issuer or audience, or the workspace trusts no identity provider",
        ))?;
    Ok(opened(&state, &headers, issued))
}

/// The response that hands a new session over: the body, and the cookie.
fn opened(
    state: &AppState,
    headers: &HeaderMap,
    issued: crate::service::sessions::IssuedSession,
) -> Response {
    let max_age = issued
        .record
        .expires_at
        .duration_since(issued.record.created_at)
        .as_secs();
    let cookie = session_cookie(
        &state.service.session_settings().cookie_name,
        &issued.token,
        max_age,
        over_tls(headers),
    );
    let view = SessionView {
        id: issued.record.id,
        token: issued.token,
        csrf_token: issued.csrf_token,
        profile_id: issued.record.profile_id.0,
        expires_at: issued.record.expires_at.to_string(),
    };
    (
        StatusCode::CREATED,
        [(header::SET_COOKIE, cookie)],
        Json(view),
    )
        .into_response()
}
