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
use crate::service::sessions::{EndUserChange, MyWrite};
use crate::service::verification::{Pending, Verification};

fn view(profile: profiled_core::Profile) -> Response {
    (StatusCode::OK, Json(ProfileView::from(profile))).into_response()
}

/// A write's answer: the profile, or 202 when it waits for a verification code.
fn written(outcome: MyWrite) -> Response {
    match outcome {
        MyWrite::Applied(profile) => view(*profile),
        MyWrite::Pending(Pending::CodeSent { expires_at }) => (
            StatusCode::ACCEPTED,
            Json(VerificationSent {
                status: "verification_sent",
                expires_at: expires_at.to_string(),
            }),
        )
            .into_response(),
    }
}

/// A verified property's change waits for its code.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct VerificationSent {
    #[schema(example = "verification_sent")]
    pub status: &'static str,
    /// Until when the code is valid.
    pub expires_at: String,
}

/// `X-Verification-Code` and `X-Verification-Resend: true`.
pub struct VerificationHeaders(pub Verification);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for VerificationHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, ApiError> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Self(Verification {
            code: header("x-verification-code"),
            resend: header("x-verification-resend").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        }))
    }
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
        (status = 202, description = "It changes a verified property: a code was sent, nothing changed yet; repeat the write with `X-Verification-Code`", body = VerificationSent),
        (status = 400, description = "The verification code is wrong, expired or used up", body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A property that is not the end user's to change, a missing CSRF token, or a foreign origin", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many codes sent to this profile", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("session" = []))
)]
/// Change the end user's own properties (writable ones only).
///
/// A change of a verified property (see `/v1/workspace/end-users`) answers 202 and sends a
/// code to the new value; the same write with `X-Verification-Code: <code>` applies it, and
/// `X-Verification-Resend: true` sends a new code.
pub async fn patch(
    State(state): State<AppState>,
    Me(user): Me,
    VerificationHeaders(verification): VerificationHeaders,
    PatchBody(change): PatchBody,
) -> Result<Response, ApiError> {
    let outcome = state
        .service
        .change_my_profile(&user, EndUserChange::Change(change), &verification)
        .await?;
    Ok(written(outcome))
}

#[utoipa::path(
    put, path = "/v1/me", tag = "end users",
    request_body(content = Object, description = "The visible properties, whole: hidden ones are kept"),
    responses(
        (status = 200, body = ProfileView),
        (status = 202, body = VerificationSent),
        (status = 400, body = Problem, content_type = "application/problem+json"),
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
    VerificationHeaders(verification): VerificationHeaders,
    ApiJson(properties): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let Value::Object(properties) = properties else {
        return Err(ApiError::invalid("", "properties must be a JSON object"));
    };
    let outcome = state
        .service
        .change_my_profile(&user, EndUserChange::Replace(properties), &verification)
        .await?;
    Ok(written(outcome))
}
