//! RFC 9457 problem details: the only shape an error of the native API takes.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use profiled_core::Violation;
use serde::Serialize;

use crate::service::ServiceError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:profiled:problem:<slug>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// For validation problems: each offending JSON pointer and what is wrong there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
    /// For a failed `If-Match`: the profile's current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// For a filter in string form that does not parse: the character offset (0-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<usize>,
}

impl Problem {
    /// The problem in one line: its detail, or each violation's pointer and message.
    pub fn summary(&self) -> String {
        if self.violations.is_empty() {
            return self.detail.clone();
        }
        self.violations
            .iter()
            .map(|v| format!("{}: {}", v.pointer, v.message))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:profiled:problem:{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            violations: Vec::new(),
            current_version: None,
            position: None,
        }
    }

    /// The plain problem for a bare status code (unknown route, wrong method, ...).
    pub fn for_status(status: StatusCode) -> Self {
        let (slug, detail) = match status {
            StatusCode::NOT_FOUND => ("not-found", "no such route; see /docs for the API"),
            StatusCode::METHOD_NOT_ALLOWED => (
                "method-not-allowed",
                "this route does not take that method; the Allow header lists the ones it takes",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => (
                "body-too-large",
                "the request body is larger than the configured limit",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported-media-type",
                "send the body as application/json",
            ),
            _ => ("http-error", "the request could not be served"),
        };
        Self::new(
            status,
            slug,
            status.canonical_reason().unwrap_or("Error"),
            detail,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

/// The HTTP layer's one error type; converted to a [`Problem`] in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    MalformedBody(String),
    #[error("invalid request")]
    Invalid(Vec<Violation>),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("body too large")]
    BodyTooLarge(usize),
    /// A filter that does not parse; `at` is the JSON pointer of the filter in the request.
    #[error("{error}")]
    BadFilter {
        error: profiled_core::filter::ParseError,
        at: String,
    },
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<profiled_core::DomainError> for ApiError {
    fn from(err: profiled_core::DomainError) -> Self {
        Self::Service(err.into())
    }
}

impl ApiError {
    pub fn invalid(pointer: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![Violation::new(pointer, message)])
    }
}

impl ApiError {
    /// The problem this error is, and whether the client should retry after a second.
    pub fn into_problem(self) -> (Problem, bool) {
        let mut retry_after = false;
        let problem = match self {
            ApiError::Unauthorized(detail) => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                detail,
            ),
            ApiError::Forbidden(detail) => {
                Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
            }
            ApiError::MalformedBody(detail) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed request body",
                detail,
            ),
            ApiError::Invalid(violations)
            | ApiError::Service(ServiceError::Invalid(violations)) => Problem {
                violations,
                ..Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Validation failed",
                    "the request breaks the rules listed in `violations`; nothing was changed",
                )
            },
            ApiError::UnsupportedMediaType(detail) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported Media Type",
                detail,
            ),
            ApiError::BodyTooLarge(limit) => Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Payload Too Large",
                format!("the request body is larger than the limit of {limit} bytes"),
            ),
            ApiError::BadFilter { error, at } => Problem {
                position: error.position,
                violations: vec![Violation::new(
                    format!("{at}{}", error.pointer.as_deref().unwrap_or("")),
                    error.message.clone(),
                )],
                ..Problem::new(
                    StatusCode::BAD_REQUEST,
                    "filter",
                    "Invalid filter",
                    error.to_string(),
                )
            },
            ApiError::Service(ServiceError::Forbidden(violations)) => Problem {
                violations,
                ..Problem::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "Forbidden",
                    "the request changes what the places in `violations` name, which this caller may not; nothing was changed",
                )
            },
            ApiError::Service(ServiceError::BadCode(detail)) => Problem::new(
                StatusCode::BAD_REQUEST,
                "verification-code",
                "Verification failed",
                detail,
            ),
            ApiError::Service(ServiceError::TooManyRequests(detail)) => {
                retry_after = true;
                Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-requests",
                    "Too Many Requests",
                    detail,
                )
            }
            ApiError::Service(ServiceError::Unavailable(detail)) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service Unavailable",
                detail,
            ),
            ApiError::Service(ServiceError::NotFound(what)) => Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "Not Found",
                format!("{what} not found"),
            ),
            ApiError::Service(ServiceError::Conflict(detail)) => {
                Problem::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
            }
            ApiError::Service(err @ ServiceError::IdentityTaken(_)) => Problem::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                err.to_string(),
            ),
            ApiError::Service(ServiceError::Store(err)) if err.is_transient() => {
                tracing::warn!(error = %err, "write kept colliding with concurrent ones");
                retry_after = true;
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "Service Unavailable",
                    "the write kept colliding with concurrent writes to the same profiles; retry it",
                )
            }
            ApiError::Service(ServiceError::PreconditionFailed { current }) => Problem {
                current_version: Some(current),
                ..Problem::new(
                    StatusCode::PRECONDITION_FAILED,
                    "precondition-failed",
                    "Precondition Failed",
                    format!(
                        "If-Match does not name the current version ({current}); read the profile again and retry"
                    ),
                )
            },
            ApiError::Service(ServiceError::Store(err)) => {
                tracing::error!(error = %err, "storage failure");
                internal_error()
            }
        };
        (problem, retry_after)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = matches!(self, ApiError::Unauthorized(_));
        let (problem, retry_after) = self.into_problem();
        let mut response = problem.into_response();
        if retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The problem for any failure of ours: it never says more than this.
pub fn internal_error() -> Problem {
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal Server Error",
        "the server failed to handle the request; it has been logged",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceError;
    use profiled_store::StoreError;

    #[test]
    fn a_write_that_kept_colliding_is_a_503_to_retry_and_says_nothing_internal() {
        let error = ApiError::Service(ServiceError::Store(StoreError::Contended(
            "could not serialize access due to concurrent update on relation profiles".into(),
        )));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[test]
    fn other_storage_failures_stay_a_bare_500() {
        let error = ApiError::Service(ServiceError::Store(StoreError::Corrupt("x".into())));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
    }
}
