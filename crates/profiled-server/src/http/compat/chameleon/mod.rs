//! Chameleon's REST v3 user profile and company APIs under `/compat/chameleon`.
//!
//! A profiled key is the account secret (`X-Account-Secret` header, or `account_secret` in
//! the query, the body or the webhook path). `/v3/analyze` reads (a reading key), `/v3/observe`
//! and `/v3/edit` write (a writing key). Chameleon's `uid` is the `uid` identity, `email` the
//! `email` identity (and a property), `id` the profile id. Errors are Chameleon's
//! `{"code", "messages"}`, and a bad secret is a 403 as Chameleon answers it.

mod companies;
mod filters;
mod names;
mod params;
mod profiles;
mod view;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};

use crate::http::AppState;
use crate::http::extract::Caller;
use crate::http::problem::ApiError;
use crate::service::ServiceError;

/// `GET /` of the base URL written with its trailing slash (`/compat/chameleon/`), which a
/// nested router does not match.
pub fn root_with_slash() -> axum::routing::MethodRouter<AppState> {
    get(account)
}

/// Chameleon's limit on a batch body.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    let batch_limit = DefaultBodyLimit::max(MAX_BATCH_BYTES);
    Router::new()
        .route("/", get(account))
        .route(
            "/v3/analyze/profiles/count",
            get(profiles::count).post(profiles::count),
        )
        .route(
            "/v3/analyze/profiles/{id}",
            get(profiles::show).post(profiles::show),
        )
        .route(
            "/v3/analyze/profiles",
            get(profiles::search).post(profiles::search),
        )
        .route(
            "/v3/analyze/profile",
            get(profiles::lookup).post(profiles::lookup),
        )
        .route("/v3/observe/hooks/profiles", post(profiles::hook))
        .route(
            "/v3/observe/hooks/{account_secret}/profiles",
            post(profiles::hook),
        )
        .route(
            "/v3/observe/hooks/profiles/batch",
            post(profiles::hook_batch).layer(batch_limit),
        )
        .route(
            "/v3/observe/hooks/{account_secret}/profiles/batch",
            post(profiles::hook_batch).layer(batch_limit),
        )
        .route("/v3/edit/profiles", delete(profiles::clear))
        .route("/v3/edit/profiles/{id}", delete(profiles::clear_by_id))
        .route("/v3/edit/profiles/forget", delete(profiles::forget))
        .route(
            "/v3/edit/profiles/{id}/forget",
            delete(profiles::forget_by_id),
        )
        .route(
            "/v3/edit/profiles/forget/batch",
            post(profiles::forget_batch).layer(batch_limit),
        )
        .route(
            "/v3/analyze/companies/{id}",
            get(companies::show).post(companies::show),
        )
        .route(
            "/v3/analyze/companies",
            get(companies::list).post(companies::list),
        )
        .route(
            "/v3/analyze/company",
            get(companies::lookup).post(companies::lookup),
        )
        .route("/v3/observe/hooks/companies", post(companies::hook))
        .route(
            "/v3/observe/hooks/{account_secret}/companies",
            post(companies::hook),
        )
        .fallback(|| async {
            ChameleonError::new(StatusCode::NOT_FOUND, "Not Found").into_response()
        })
        .layer(axum::middleware::map_response(framework_errors))
}

/// An error in Chameleon's shape: `{"code": <status>, "messages": [...]}`.
#[derive(Debug)]
pub struct ChameleonError {
    status: StatusCode,
    messages: Vec<String>,
}

impl ChameleonError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            messages: vec![message.into()],
        }
    }

    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The messages joined, for a batch item's report.
    pub fn message(&self) -> String {
        self.messages.join("; ")
    }
}

impl From<ApiError> for ChameleonError {
    fn from(e: ApiError) -> Self {
        let (problem, _) = e.into_problem();
        let status = match StatusCode::from_u16(problem.status) {
            // Chameleon answers a missing or bad secret with 403.
            Ok(StatusCode::UNAUTHORIZED) => StatusCode::FORBIDDEN,
            Ok(status) => status,
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let messages = if problem.violations.is_empty() {
            vec![problem.detail]
        } else {
            problem
                .violations
                .iter()
                .map(|v| {
                    if v.pointer.is_empty() {
                        v.message.clone()
                    } else {
                        format!("{}: {}", v.pointer, v.message)
                    }
                })
                .collect()
        };
        Self { status, messages }
    }
}

impl From<ServiceError> for ChameleonError {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<profiled_core::Violation> for ChameleonError {
    fn from(v: profiled_core::Violation) -> Self {
        ApiError::Invalid(vec![v]).into()
    }
}

impl IntoResponse for ChameleonError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({"code": self.status.as_u16(), "messages": self.messages})),
        )
            .into_response()
    }
}

/// Errors the framework answers itself (a wrong method, ...), in Chameleon's shape.
async fn framework_errors(response: Response) -> Response {
    if !super::is_framework_error(&response) {
        return response;
    }
    let status = response.status();
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is too large (16 MB at most for a batch)"
        }
        other => other.canonical_reason().unwrap_or("error"),
    };
    ChameleonError::new(status, message).into_response()
}

/// A request's parameters: the query string, with a JSON body's keys laid over it, and the
/// account secret it carries.
pub struct Call {
    pub params: Map<String, Value>,
    secret: Option<String>,
}

impl Call {
    /// The caller the secret (or `path_secret`, from a webhook URL) stands for.
    async fn caller(
        &self,
        state: &AppState,
        path_secret: Option<&str>,
    ) -> Result<Caller, ChameleonError> {
        let secret = path_secret.or(self.secret.as_deref()).ok_or_else(|| {
            ChameleonError::new(
                StatusCode::FORBIDDEN,
                "send the account secret as `X-Account-Secret` or `account_secret`",
            )
        })?;
        authenticate(state, secret).await
    }
}

async fn authenticate(state: &AppState, secret: &str) -> Result<Caller, ChameleonError> {
    match state.service.authenticate(secret.trim()).await? {
        Some(key) => Ok(Caller::from_key(key)),
        None => Err(ChameleonError::new(
            StatusCode::FORBIDDEN,
            "the account secret is not valid: unknown, revoked or mistyped",
        )),
    }
}

fn header_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-account-secret")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ChameleonError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ChameleonError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
        } else {
            ChameleonError::new(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {rejection}"),
            )
        }
    })
}

impl FromRequest<AppState> for Call {
    type Rejection = ChameleonError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ChameleonError> {
        let mut params = params::query_object(req.uri().query())
            .map_err(|m| ChameleonError::new(StatusCode::BAD_REQUEST, m))?;
        let mut secret = header_secret(req.headers());
        let bytes = body_bytes(req, state).await?;
        if !bytes.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(body)) => params.extend(body),
                Ok(_) => return Err(ChameleonError::unprocessable("the body is a JSON object")),
                Err(e) => {
                    return Err(ChameleonError::new(
                        StatusCode::BAD_REQUEST,
                        format!("the body is not valid JSON: {e}"),
                    ));
                }
            }
        }
        if let Some(Value::String(s)) = params.remove("account_secret") {
            secret.get_or_insert(s);
        }
        Ok(Call { params, secret })
    }
}

/// A parameter given as a string or a number (Chameleon's `uid` may be either), as text;
/// `None` when absent, null or empty.
fn text_param(params: &Map<String, Value>, key: &str) -> Result<Option<String>, ChameleonError> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(ChameleonError::from(profiled_core::Violation::new(
            format!("/{key}"),
            "a string or a number",
        ))),
    }
}

/// `limit`: 50 unless given, 1 to 500.
fn limit_param(params: &Map<String, Value>) -> Result<u32, ChameleonError> {
    let invalid = || {
        ChameleonError::from(profiled_core::Violation::new(
            "/limit",
            "a limit is 1 to 500",
        ))
    };
    match text_param(params, "limit")? {
        None => Ok(50),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(invalid),
    }
}

/// `before` and `after` as bounds on ids: an id as it is, a timestamp as the first id minted
/// at that millisecond (ids are UUIDv7, so they sort by creation time).
fn id_bound(params: &Map<String, Value>, key: &str) -> Result<Option<String>, ChameleonError> {
    let Some(text) = text_param(params, key)? else {
        return Ok(None);
    };
    Ok(Some(match text.parse::<jiff::Timestamp>() {
        Ok(t) => {
            let ms = t.as_millisecond().max(0) as u64;
            format!("{:08x}-{:04x}", ms >> 16, ms & 0xffff)
        }
        Err(_) => text,
    }))
}

/// `GET /`: which account (workspace) and key the secret stands for.
async fn account(State(state): State<AppState>, call: Call) -> Result<Response, ChameleonError> {
    let caller = call.caller(&state, None).await?;
    let ws = caller.read().or_else(|_| caller.write())?;
    Ok(
        axum::Json(json!({"account": {"id": ws.0.to_string()}, "user": {"id": caller.key_id}}))
            .into_response(),
    )
}
