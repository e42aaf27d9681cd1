//! Inkeep's user profile API (`/manage/api/users/{userId}/profile`) under `/compat/inkeep`.
//!
//! The profile is the one whose `user_id` identity is `{userId}`. Inkeep's `attributes` and
//! `timezone` are two properties, `attributes` and `timezone` unless the workspace maps them
//! elsewhere (`/v1/workspace/compat/inkeep`; see `docs/compat.md`).
//! A profiled API key acts for any user of its workspace; an end user's session (bearer token
//! or the `better-auth.session_token` cookie) only for its own user, and only on the paths the
//! workspace lets end users write. Errors are Inkeep's problem+json.

use axum::Router;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use profiled_core::ops::PropertyOps;
use profiled_core::{Identity, Profile};
use serde_json::{Map, Value, json};

use crate::http::AppState;
use crate::http::end_user::cookie;
use crate::http::extract::{Caller, OriginTag, bearer_token, read_body};
use crate::http::problem::ApiError;
use crate::service::compat_settings::InkeepMapping;
use crate::service::sessions::{EndUser, EndUserChange, MyWrite, is_session_token};
use crate::service::verification::Verification;
use crate::service::{Change, ServiceError, Upsert};

const SESSION_COOKIE: &str = "better-auth.session_token";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/manage/api/users/{user_id}/profile",
            get(get_profile).put(upsert_profile).patch(upsert_profile),
        )
        .fallback(|| async { InkeepError::new(StatusCode::NOT_FOUND, "Not Found").into_response() })
        .layer(axum::middleware::from_fn(framework_errors))
}

/// An error in Inkeep's problem+json shape.
pub struct InkeepError {
    status: StatusCode,
    detail: String,
    instance: Option<String>,
}

impl InkeepError {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            instance: None,
        }
    }
}

impl From<ApiError> for InkeepError {
    fn from(e: ApiError) -> Self {
        let (problem, _) = e.into_problem();
        let detail = problem.summary();
        Self::new(
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            detail,
        )
    }
}

impl From<ServiceError> for InkeepError {
    fn from(e: ServiceError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for InkeepError {
    fn into_response(self) -> Response {
        let (code, title) = match self.status {
            StatusCode::BAD_REQUEST => ("bad_request", "Bad Request"),
            StatusCode::UNAUTHORIZED => ("unauthorized", "Unauthorized"),
            StatusCode::FORBIDDEN => ("forbidden", "Forbidden"),
            StatusCode::NOT_FOUND => ("not_found", "Not Found"),
            StatusCode::CONFLICT => ("conflict", "Conflict"),
            StatusCode::UNPROCESSABLE_ENTITY => ("unprocessable_entity", "Unprocessable Entity"),
            StatusCode::TOO_MANY_REQUESTS => ("too_many_requests", "Too Many Requests"),
            StatusCode::SERVICE_UNAVAILABLE => ("service_unavailable", "Service Unavailable"),
            s if s.is_client_error() => ("bad_request", "Bad Request"),
            _ => ("internal_server_error", "Internal Server Error"),
        };
        let detail = if self.status.is_server_error() {
            "An internal server error occurred. Please try again later.".to_owned()
        } else {
            self.detail
        };
        let message: String = detail.chars().take(100).collect();
        let request_id = format!("req_{}", uuid::Uuid::now_v7().simple());
        let mut body = json!({
            "code": code,
            "title": title,
            "status": self.status.as_u16(),
            "detail": detail,
            "requestId": request_id,
            "error": {"code": code, "message": message},
        });
        if let Some(instance) = self.instance {
            body["instance"] = Value::String(instance);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            headers.insert("x-request-id", id);
        }
        response
    }
}

/// Framework errors (wrong method, bad path) in Inkeep's shape, with the request path as
/// `instance` on every error.
async fn framework_errors(request: Request, next: axum::middleware::Next) -> Response {
    // The path as the client sent it (inside the nest, the prefix is stripped).
    let path = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or_else(
            || request.uri().path().to_owned(),
            |uri| uri.path().to_owned(),
        );
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        // Ours: add the instance.
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if value.is_object() {
            value["instance"] = Value::String(path);
        }
        let mut response = (parts.status, axum::Json(value)).into_response();
        for (name, value) in parts.headers.iter() {
            response.headers_mut().insert(name, value.clone());
        }
        return response;
    }
    let mut error = InkeepError::new(status, status.canonical_reason().unwrap_or("Error"));
    error.instance = Some(path);
    error.into_response()
}

/// Who calls: a key (any user of its workspace) or an end user (only themselves).
enum Inkeeper {
    Key(Caller),
    User(EndUser),
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Inkeeper, InkeepError> {
    let unauthorized = |m: &str| InkeepError::new(StatusCode::UNAUTHORIZED, m);
    let token = match bearer_token(headers) {
        Some(token) => token,
        None => cookie(headers, SESSION_COOKIE)
            .ok_or_else(|| unauthorized("Please log in to access this resource"))?,
    };
    if is_session_token(token) {
        let user = state
            .service
            .authenticate_session(token)
            .await?
            .ok_or_else(|| unauthorized("Invalid Token"))?;
        return Ok(Inkeeper::User(user));
    }
    let key = state
        .service
        .authenticate(token)
        .await?
        .ok_or_else(|| unauthorized("Invalid Token"))?;
    Ok(Inkeeper::Key(Caller::from_key(key)))
}

/// The `user_id` identity of the path.
fn user_identity(state: &AppState, user_id: &str) -> Result<Identity, InkeepError> {
    Identity::parse("user_id", user_id, state.service.limits())
        .map_err(|m| InkeepError::new(StatusCode::BAD_REQUEST, m))
}

/// The profile as Inkeep shows it.
fn view(profile: &Profile, user_id: &str, mapping: &InkeepMapping) -> Value {
    let attributes = match profile.properties.get(&mapping.attributes) {
        None | Some(Value::Null) => json!({}),
        Some(value) => value.clone(),
    };
    let timezone = profile
        .properties
        .get(&mapping.timezone)
        .and_then(Value::as_str)
        .map_or(Value::Null, |tz| Value::String(tz.to_owned()));
    json!({
        "id": profile.id.0,
        "userId": user_id,
        "timezone": timezone,
        "attributes": attributes,
        "createdAt": profile.created_at.to_string(),
        "updatedAt": profile.updated_at.to_string(),
    })
}

/// Whether the end user is the path's user.
async fn is_own(
    state: &AppState,
    user: &EndUser,
    identity: &Identity,
) -> Result<bool, InkeepError> {
    let mine = state
        .service
        .profile(user.workspace, &user.profile_id)
        .await?;
    Ok(mine.identities.contains(identity))
}

async fn get_profile(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, InkeepError> {
    let identity = user_identity(&state, &user_id)?;
    let (ws, profile) = match authenticate(&state, &headers).await? {
        Inkeeper::Key(caller) => {
            let ws = caller.read()?;
            (ws, state.service.profile_by_identity(ws, &identity).await)
        }
        Inkeeper::User(user) => {
            if !is_own(&state, &user, &identity).await? {
                return Err(InkeepError::new(
                    StatusCode::FORBIDDEN,
                    "Cannot access another user's profile",
                ));
            }
            (user.workspace, state.service.my_profile(&user).await)
        }
    };
    let mapping = state.service.inkeep_mapping(ws).await?;
    match profile {
        Ok(profile) => Ok(axum::Json(view(&profile, &user_id, &mapping)).into_response()),
        Err(ServiceError::NotFound(_)) => Err(InkeepError::new(
            StatusCode::NOT_FOUND,
            "User profile not found",
        )),
        Err(e) => Err(e.into()),
    }
}

/// `{timezone?, attributes?}`, read as Inkeep reads it.
struct UpsertBody {
    /// `None`: not sent; `Some(None)`: cleared.
    timezone: Option<Option<String>>,
    attributes: Value,
}

impl FromRequest<AppState> for UpsertBody {
    type Rejection = InkeepError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, InkeepError> {
        let bytes = read_body(req, state).await?;
        let bad = |m: String| InkeepError::new(StatusCode::BAD_REQUEST, m);
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| bad(format!("the body is not valid JSON: {e}")))?;
        let Value::Object(mut body) = value else {
            return Err(bad("the body is a JSON object".into()));
        };
        let timezone = match body.remove("timezone") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(tz)) => {
                if jiff::tz::db().get(&tz).is_err() {
                    return Err(bad(format!("`{tz}` is not an IANA time zone name")));
                }
                Some(Some(tz))
            }
            Some(_) => return Err(bad("timezone is a string or null".into())),
        };
        let attributes = match body.remove("attributes") {
            None | Some(Value::Null) => json!({}),
            Some(value) => value,
        };
        if let Some(unknown) = body.keys().next() {
            return Err(bad(format!("unknown field `{unknown}`")));
        }
        Ok(Self {
            timezone,
            attributes,
        })
    }
}

async fn upsert_profile(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: UpsertBody,
) -> Result<Response, InkeepError> {
    let identity = user_identity(&state, &user_id)?;
    let caller = authenticate(&state, &headers).await?;
    let ws = match &caller {
        Inkeeper::Key(caller) => caller.write()?,
        Inkeeper::User(user) => user.workspace,
    };
    let mapping = state.service.inkeep_mapping(ws).await?;
    let mut set = Map::new();
    set.insert(mapping.attributes.clone(), body.attributes);
    let mut unset = Vec::new();
    match body.timezone {
        Some(Some(tz)) => {
            set.insert(mapping.timezone.clone(), Value::String(tz));
        }
        Some(None) => unset.push(mapping.timezone.clone()),
        None => {}
    }
    let ops = PropertyOps {
        set,
        unset,
        ..PropertyOps::default()
    };
    let profile = match caller {
        Inkeeper::Key(caller) => {
            if !caller.scope.can_read() {
                return Err(InkeepError::new(
                    StatusCode::FORBIDDEN,
                    "this key may write but not read profiles; use a read_write key",
                ));
            }
            state
                .service
                .upsert(
                    ws,
                    &caller.context(OriginTag(None)),
                    Upsert {
                        identities: vec![identity],
                        change: Change::Ops(ops),
                        company: None,
                        seen: None,
                    },
                )
                .await?
                .profile
        }
        Inkeeper::User(user) => {
            if !is_own(&state, &user, &identity).await? {
                return Err(InkeepError::new(
                    StatusCode::FORBIDDEN,
                    "Cannot update another user's profile",
                ));
            }
            match state
                .service
                .change_my_profile(
                    &user,
                    EndUserChange::Change(Change::Ops(ops)),
                    &Verification::default(),
                )
                .await?
            {
                MyWrite::Applied(profile) => *profile,
                MyWrite::Pending(_) => {
                    return Err(InkeepError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "a verified property cannot change through this API",
                    ));
                }
            }
        }
    };
    Ok(axum::Json(view(&profile, &user_id, &mapping)).into_response())
}
