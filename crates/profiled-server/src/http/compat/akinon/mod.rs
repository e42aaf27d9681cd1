//! Akinon's storefront profile API (`/users/profile/`, `/users/profile-with-loyalty/`,
//! `/csrf_token/`) under `/compat/akinon`, on the end-user sessions of `/v1/sessions`.
//!
//! The session token travels in the cookie `osessionid` (or `sessionid`). Unsafe methods need
//! Django's double submit: `X-CSRFToken` equal to the `csrftoken` cookie, whose value
//! `/csrf_token/` issued for that very session (an HMAC of a nonce under the session token, so
//! nothing is stored and a token of another session does not pass). Errors are Django REST
//! framework's: `{"detail": ...}`, or `{field: [messages], "non_field_errors": [...]}`.

mod fields;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use profiled_core::end_user::EndUserRules;
use profiled_core::ops::PropertyOps;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use crate::http::AppState;
use crate::http::end_user::{cookie, over_tls};
use crate::http::problem::ApiError;
use crate::service::sessions::{EndUser, EndUserChange, MyWrite, is_session_token};
use crate::service::verification::{Pending, Verification, hmac_sha256};
use crate::service::{Change, ServiceError, loyalty};
use fields::FieldErrors;

/// The session cookies Akinon's storefronts use.
const SESSION_COOKIES: [&str; 2] = ["osessionid", "sessionid"];
const CSRF_COOKIE: &str = "csrftoken";
const CSRF_HEADER: &str = "x-csrftoken";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/csrf_token/", get(csrf_token))
        .route(
            "/users/profile/",
            get(profile)
                .put(|s, u, b| update(s, u, b, false, false))
                .patch(|s, u, b| update(s, u, b, true, false)),
        )
        .route(
            "/users/profile-with-loyalty/",
            get(profile_with_loyalty)
                .put(|s, u, b| update(s, u, b, false, true))
                .patch(|s, u, b| update(s, u, b, true, true)),
        )
        .fallback(|| async {
            AkinonError::detail(StatusCode::NOT_FOUND, "Not found.").into_response()
        })
        .layer(axum::middleware::map_response(framework_errors))
}

/// An error as Django REST framework answers it.
#[derive(Debug)]
pub enum AkinonError {
    Detail(StatusCode, String),
    /// 400 with each field's messages.
    Fields(FieldErrors),
}

impl AkinonError {
    fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        Self::Detail(status, message.into())
    }
}

impl IntoResponse for AkinonError {
    fn into_response(self) -> Response {
        match self {
            AkinonError::Detail(status, detail) => {
                (status, axum::Json(json!({ "detail": detail }))).into_response()
            }
            AkinonError::Fields(errors) => {
                (StatusCode::BAD_REQUEST, axum::Json(json!(errors))).into_response()
            }
        }
    }
}

/// The field a violation's pointer is about, if it is one of Akinon's.
fn field_of(pointer: &str) -> Option<&'static str> {
    let rest = pointer.strip_prefix("/properties").unwrap_or(pointer);
    let first = rest
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    fields::FIELDS.iter().copied().find(|f| *f == first)
}

impl From<ServiceError> for AkinonError {
    fn from(e: ServiceError) -> Self {
        match e {
            // The workspace's schema, in DRF's shape.
            ServiceError::Invalid(violations) => {
                let mut errors = FieldErrors::new();
                for v in violations {
                    let key = field_of(&v.pointer).unwrap_or("non_field_errors");
                    errors.entry(key.to_owned()).or_default().push(v.message);
                }
                AkinonError::Fields(errors)
            }
            ServiceError::BadCode(message) => {
                AkinonError::Fields(FieldErrors::from([("code".to_owned(), vec![message])]))
            }
            other => ApiError::from(other).into(),
        }
    }
}

impl From<ApiError> for AkinonError {
    fn from(e: ApiError) -> Self {
        let e = match e {
            ApiError::Service(inner @ (ServiceError::Invalid(_) | ServiceError::BadCode(_))) => {
                return inner.into();
            }
            other => other,
        };
        let (problem, _) = e.into_problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        AkinonError::detail(status, problem.summary())
    }
}

async fn framework_errors(response: Response) -> Response {
    if !super::is_framework_error(&response) {
        return response;
    }
    let status = response.status();
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed.",
        StatusCode::PAYLOAD_TOO_LARGE => "Request body too large.",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "Unsupported media type in request.",
        other => other.canonical_reason().unwrap_or("Error"),
    };
    AkinonError::detail(status, detail).into_response()
}

/// The session token a request's Akinon cookie carries.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    SESSION_COOKIES
        .iter()
        .find_map(|name| cookie(headers, name))
        .filter(|token| is_session_token(token))
}

/// A CSRF token for the session: a nonce and its HMAC under the session token.
fn csrf_for(session: &str, nonce: &str) -> String {
    let mac = hmac_sha256(
        session.as_bytes(),
        format!("akinon-csrf:{nonce}").as_bytes(),
    );
    format!("{nonce}.{}", URL_SAFE_NO_PAD.encode(&mac[..24]))
}

fn csrf_valid(session: &str, token: &str) -> bool {
    let Some((nonce, _)) = token.split_once('.') else {
        return false;
    };
    bool::from(csrf_for(session, nonce).as_bytes().ct_eq(token.as_bytes()))
}

/// The end user an Akinon request is authenticated as, with Django's CSRF check on unsafe
/// methods.
pub struct Shopper(EndUser);

impl FromRequestParts<AppState> for Shopper {
    type Rejection = AkinonError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AkinonError> {
        let unauthorized = |m: &str| AkinonError::detail(StatusCode::UNAUTHORIZED, m);
        let token = session_token(&parts.headers)
            .ok_or_else(|| unauthorized("Authentication credentials were not provided."))?
            .to_owned();
        let user = state
            .service
            .authenticate_session(&token)
            .await?
            .ok_or_else(|| unauthorized("Invalid session: unknown, expired or revoked."))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let forbidden =
                |m: &str| AkinonError::detail(StatusCode::FORBIDDEN, format!("CSRF Failed: {m}"));
            let header = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            let cookie = cookie(&parts.headers, CSRF_COOKIE);
            match (header, cookie) {
                (None, _) => return Err(forbidden("CSRF token missing.")),
                (_, None) => return Err(forbidden("CSRF cookie not set.")),
                (Some(h), Some(c)) if h != c || !csrf_valid(&token, h) => {
                    return Err(forbidden("CSRF token incorrect."));
                }
                _ => {}
            }
            // A browser's Origin, when it sends one, must be trusted (the storefront's proxy
            // sends a Referer and no Origin).
            if let Some(origin) = parts
                .headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
            {
                let own = parts
                    .headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(|host| {
                        format!(
                            "{}://{host}",
                            if over_tls(&parts.headers) {
                                "https"
                            } else {
                                "http"
                            }
                        )
                    });
                let allowed = state
                    .service
                    .end_user_settings(user.workspace)
                    .await?
                    .allowed_origins;
                if own.as_deref() != Some(origin) && !allowed.iter().any(|a| a == origin) {
                    return Err(forbidden(&format!(
                        "Origin checking failed - {origin} does not match any trusted origins."
                    )));
                }
            }
        }
        Ok(Shopper(user))
    }
}

/// `GET /csrf_token/`: `{csrf_token}` and the `csrftoken` cookie, for the session the request
/// carries (a token without a session passes no check).
async fn csrf_token(headers: HeaderMap) -> Response {
    use rand::Rng;
    let nonce: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    let token = csrf_for(session_token(&headers).unwrap_or_default(), &nonce);
    let secure = if over_tls(&headers) { "; Secure" } else { "" };
    let cookie = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={token}; Path=/; Max-Age=31449600; SameSite=Lax{secure}"
    ))
    .expect("a token is header-safe");
    let mut response = axum::Json(json!({ "csrf_token": token })).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

async fn current(state: &AppState, user: &EndUser) -> Result<profiled_core::Profile, AkinonError> {
    Ok(state.service.my_profile(user).await?)
}

/// `GET /users/profile/`
async fn profile(
    State(state): State<AppState>,
    Shopper(user): Shopper,
) -> Result<Response, AkinonError> {
    Ok(axum::Json(fields::view(&current(&state, &user).await?)).into_response())
}

fn with_loyalty(mut view: Value) -> Value {
    view["code"] = Value::Null;
    view["resend"] = Value::Bool(false);
    view
}

/// `GET /users/profile-with-loyalty/`
async fn profile_with_loyalty(
    State(state): State<AppState>,
    Shopper(user): Shopper,
) -> Result<Response, AkinonError> {
    Ok(axum::Json(with_loyalty(fields::view(&current(&state, &user).await?))).into_response())
}

/// `code` and `resend`, from a loyalty update's body.
fn verification(body: &Map<String, Value>) -> Result<Verification, AkinonError> {
    let code = match body.get("code") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.trim().to_owned()),
        Some(_) => {
            return Err(AkinonError::Fields(FieldErrors::from([(
                "code".to_owned(),
                vec!["Not a valid string.".into()],
            )])));
        }
    };
    let resend = match body.get("resend") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(AkinonError::Fields(FieldErrors::from([(
                "resend".to_owned(),
                vec!["Must be a valid boolean.".into()],
            )])));
        }
    };
    Ok(Verification { code, resend })
}

/// PUT (`partial` false) and PATCH on either profile route; `loyalty` for
/// `/users/profile-with-loyalty/`, which verifies a phone change and tells the loyalty
/// service.
async fn update(
    State(state): State<AppState>,
    Shopper(user): Shopper,
    body: Bytes,
    partial: bool,
    loyalty: bool,
) -> Result<Response, AkinonError> {
    let body: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "list",
                Value::String(_) => "str",
                Value::Number(_) => "int",
                Value::Bool(_) => "bool",
                _ => "NoneType",
            };
            return Err(AkinonError::Fields(FieldErrors::from([(
                "non_field_errors".to_owned(),
                vec![format!(
                    "Invalid data. Expected a dictionary, but got {kind}."
                )],
            )])));
        }
        Err(e) => {
            return Err(AkinonError::detail(
                StatusCode::BAD_REQUEST,
                format!("JSON parse error - {e}"),
            ));
        }
    };
    let ws = user.workspace;
    let settings = state.service.akinon_settings(ws).await?;
    let set =
        fields::update(&body, &settings.required_fields, partial).map_err(AkinonError::Fields)?;
    let (verification, verified) = if loyalty {
        let verified: Vec<String> = if settings.verify_phone {
            vec!["phone".into()]
        } else {
            Vec::new()
        };
        (verification(&body)?, verified)
    } else {
        (Verification::default(), Vec::new())
    };
    let hidden = state.service.end_user_settings(ws).await?.hidden;
    let writable: Vec<String> = fields::FIELDS.iter().map(|f| (*f).to_owned()).collect();
    let rules =
        EndUserRules::parse(&writable, &hidden, &verified, "").map_err(ServiceError::from)?;
    // The loyalty service hears which fields changed, so the profile is read before.
    let loyalty_service = settings.loyalty_service.filter(|_| loyalty);
    let before = match &loyalty_service {
        Some(_) => Some(current(&state, &user).await?),
        None => None,
    };
    let change = EndUserChange::Change(Change::Ops(PropertyOps {
        set,
        ..PropertyOps::default()
    }));
    match state.service.change_my_profile_under(&user, change, &verification, &rules).await? {
        MyWrite::Pending(Pending::CodeSent { expires_at }) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"detail": "Verification code sent for phone confirmation", "expires_at": expires_at.to_string()})),
        )
            .into_response()),
        MyWrite::Applied(profile) => {
            let view = fields::view(&profile);
            if let (Some(service), Some(before)) = (loyalty_service, before) {
                let old = fields::view(&before);
                let changed: Vec<&str> = fields::FIELDS.iter().copied().filter(|f| old[*f] != view[*f]).collect();
                if !changed.is_empty() {
                    loyalty::deliver(
                        service,
                        json!({"event": "profile_updated", "workspace_id": ws.0, "profile_id": profile.id, "changed": changed, "profile": view}),
                    );
                }
            }
            let view = if loyalty { with_loyalty(view) } else { view };
            Ok(axum::Json(view).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_pass_only_for_their_session() {
        let token = csrf_for("pss_a", "nonce1");
        assert!(csrf_valid("pss_a", &token));
        assert!(!csrf_valid("pss_b", &token));
        assert!(!csrf_valid("pss_a", "nonce1.forged"));
        assert!(!csrf_valid("pss_a", "no-dot"));
    }

    #[test]
    fn schema_violations_name_akinon_fields() {
        assert_eq!(field_of("/properties/first_name"), Some("first_name"));
        assert_eq!(field_of("/properties/attributes/size"), Some("attributes"));
        assert_eq!(field_of("/properties/other"), None);
    }
}
