//! `/v1/me`: the end user's own profile, through their session. Hidden properties are never
//! shown; only writable ones change (see `/v1/workspace/end-users`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::http::AppState;
use crate::http::end_user::Me;
use crate::http::extract::{ApiJson, PatchBody};
use crate::http::problem::{ApiError, Problem};
use crate::http::v1::profiles::ProfileView;
use crate::service::sessions::EndUserChange;

fn view(profile: profiled_core::Profile) -> Response {
    (StatusCode::OK, Json(ProfileView::from(profile))).into_response()
}

#[utoipa::path(
    get, path = "/v1/me", tag = "end users",
    responses(
        (status = 200, body = ProfileView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
/// The end user's own profile (hidden properties left out).
pub async fn get(State(state): State<AppState>, Me(user): Me) -> Result<Response, ApiError> {
    Ok(view(state.service.my_profile(&user).await?))
}

#[utoipa::path(
    patch, path = "/v1/me", tag = "end users",
    request_body(
        description = "`application/merge-patch+json`: an RFC 7396 merge patch of `properties`. `application/json`: operations.",
        content((Object = "application/merge-patch+json"), (Object = "application/json"))
    ),
    responses(
        (status = 200, body = ProfileView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A property that is not the end user's to change, a missing CSRF token, or a foreign origin", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
/// Change the end user's own properties (writable ones only).
pub async fn patch(
    State(state): State<AppState>,
    Me(user): Me,
    PatchBody(change): PatchBody,
) -> Result<Response, ApiError> {
    let profile = state
        .service
        .change_my_profile(&user, EndUserChange::Change(change))
        .await?;
    Ok(view(profile))
}

#[utoipa::path(
    put, path = "/v1/me", tag = "end users",
    request_body(content = Object, description = "The visible properties, whole: hidden ones are kept"),
    responses(
        (status = 200, body = ProfileView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
/// Replace the end user's visible properties.
pub async fn put(
    State(state): State<AppState>,
    Me(user): Me,
    ApiJson(properties): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let Value::Object(properties) = properties else {
        return Err(ApiError::invalid("", "properties must be a JSON object"));
    };
    let profile = state
        .service
        .change_my_profile(&user, EndUserChange::Replace(properties))
        .await?;
    Ok(view(profile))
}
