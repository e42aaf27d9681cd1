//! UserFlux's Integration API (profiles and events) under `/compat/userflux`.
//!
//! A profiled `write` key plays UserFlux's Write-Only key (it may POST, never read) and a
//! `read_write` key its Read + Write key. `userId` is the `user_id` identity and `anonymousId`
//! the `anonymous_id` one; sending both links them (the anonymous profile merges into the
//! known one). Errors are `{"status", "error", "message"}` JSON (UserFlux documents none).

use std::net::IpAddr;

use axum::Router;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use profiled_core::{Identity, Profile};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::http::AppState;
use crate::http::extract::{Caller, ClientIp, read_body};
use crate::http::problem::ApiError;
use crate::service::{Change, EventBatch, NewEvent, Seen, Upsert};
use profiled_core::ops::PropertyOps;

/// Events per batch, as UserFlux documents.
const MAX_BATCH: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/profile", post(update_profile))
        .route("/profile/{user_id}", get(get_profile))
        .route("/event/ingest", post(ingest))
        .route("/event/ingest/batch", post(ingest_batch))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::middleware::map_response(framework_errors))
}

/// An error in UserFlux's shape.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
        s if s.is_server_error() => "unavailable",
        _ => "error",
    };
    (
        status,
        axum::Json(json!({"status": status.as_u16(), "error": code, "message": message.into()})),
    )
        .into_response()
}

/// A native error, answered in UserFlux's shape: rule violations are 400s (UserFlux has no
/// 422), and a server failure says only that.
pub struct UserFluxError(ApiError);

impl<E: Into<ApiError>> From<E> for UserFluxError {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for UserFluxError {
    fn into_response(self) -> Response {
        let (problem, _) = self.0.into_problem();
        let message = problem.summary();
        let status = match StatusCode::from_u16(problem.status) {
            Ok(StatusCode::UNPROCESSABLE_ENTITY) | Ok(StatusCode::CONFLICT) => {
                StatusCode::BAD_REQUEST
            }
            Ok(StatusCode::INTERNAL_SERVER_ERROR) => StatusCode::SERVICE_UNAVAILABLE,
            Ok(status) => status,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        error(status, message)
    }
}

/// Errors the framework answers itself (a wrong method, an unreadable path), in UserFlux's
/// shape.
async fn framework_errors(response: Response) -> Response {
    if !super::is_framework_error(&response) {
        return response;
    }
    let status = response.status();
    error(status, status.canonical_reason().unwrap_or("error"))
}

/// A JSON body, refused in UserFlux's shape.
pub struct Body<T>(T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = UserFluxError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, UserFluxError> {
        let bytes = read_body(req, state).await?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::MalformedBody(format!("the body is not valid JSON: {e}")))?;
        Ok(Body(crate::http::extract::from_value_at(value, "")?))
    }
}

#[derive(Debug, Deserialize)]
pub struct Enrichment {
    #[serde(rename = "locationEnrichment")]
    location_enrichment: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileBody {
    user_id: Option<String>,
    anonymous_id: Option<String>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
    /// The browser or mobile SDK's description of the device; `null` from the backend SDK.
    #[serde(default)]
    device_data: Option<Map<String, Value>>,
    /// Sent by the React Native SDK; kept as the `external_id` identity.
    external_id: Option<String>,
}

/// The identities a UserFlux body names.
fn identities(
    state: &AppState,
    user_id: Option<&str>,
    anonymous_id: Option<&str>,
    external_id: Option<&str>,
) -> Result<Vec<Identity>, UserFluxError> {
    let limits = state.service.limits();
    let mut identities = Vec::new();
    for (kind, value, field) in [
        ("user_id", user_id, "userId"),
        ("anonymous_id", anonymous_id, "anonymousId"),
        ("external_id", external_id, "externalId"),
    ] {
        if let Some(value) = value {
            identities.push(
                Identity::parse(kind, value, limits)
                    .map_err(|m| ApiError::invalid(&format!("/{field}"), m))?,
            );
        }
    }
    if !identities
        .iter()
        .any(|i| matches!(i.kind.as_str(), "user_id" | "anonymous_id"))
    {
        return Err(ApiError::invalid("", "send a userId, an anonymousId, or both").into());
    }
    Ok(identities)
}

async fn update_profile(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(enrichment): Query<Enrichment>,
    ClientIp(ip): ClientIp,
    Body(body): Body<ProfileBody>,
) -> Result<Response, UserFluxError> {
    let caller = caller?;
    let ws = caller.write()?;
    let identities = identities(
        &state,
        body.user_id.as_deref(),
        body.anonymous_id.as_deref(),
        body.external_id.as_deref(),
    )?;
    let ops = PropertyOps {
        set: body.properties.unwrap_or_default(),
        ..PropertyOps::default()
    };
    let seen = Seen {
        device: body.device_data.unwrap_or_default(),
        ip: ip.filter(|_| enrichment.location_enrichment == Some(true)),
    };
    state
        .service
        .upsert(
            ws,
            &caller.context(crate::http::extract::OriginTag(None)),
            Upsert {
                identities,
                change: Change::Ops(ops),
                company: None,
                seen: (!seen.device.is_empty() || seen.ip.is_some()).then_some(seen),
            },
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn millis(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

/// A profile as UserFlux shows it.
fn view(profile: Profile) -> Value {
    let anonymous_ids: Vec<&str> = profile
        .identities
        .iter()
        .filter(|i| i.kind.as_str() == "anonymous_id")
        .map(|i| i.value.as_str())
        .collect();
    let user_id = profile
        .identities
        .iter()
        .find(|i| i.kind.as_str() == "user_id")
        .map_or(profile.id.0.as_str(), |i| i.value.as_str());
    json!({
        "id": user_id,
        "anonymousIds": anonymous_ids,
        "properties": profile.properties,
        "computedProperties": profile.computed,
        "segments": profile.segments,
        "locationData": profile.location,
        "deviceData": profile.device,
        "lastUpdatedAt": millis(profile.updated_at),
        "createdAt": millis(profile.created_at),
    })
}

async fn get_profile(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Path(user_id): Path<String>,
) -> Result<Response, UserFluxError> {
    let ws = caller?.read()?;
    let identity = Identity::parse("user_id", &user_id, state.service.limits())
        .map_err(|m| ApiError::invalid("/userId", m))?;
    let profile = state.service.profile_by_identity(ws, &identity).await?;
    Ok(axum::Json(view(profile)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    user_id: Option<String>,
    anonymous_id: Option<String>,
    name: String,
    /// Epoch milliseconds (the SDKs' `Date.now()`); now when absent.
    timestamp: Option<i64>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
    #[serde(default)]
    device_data: Option<Map<String, Value>>,
    session_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct BatchBody {
    events: Vec<EventBody>,
}

fn new_event(state: &AppState, event: EventBody, at: &str) -> Result<NewEvent, UserFluxError> {
    let identities = identities(
        state,
        event.user_id.as_deref(),
        event.anonymous_id.as_deref(),
        None,
    )
    .map_err(|_| ApiError::invalid(at, "an event names a userId, an anonymousId, or both"))?;
    let when = event
        .timestamp
        .map(|ms| {
            Timestamp::from_millisecond(ms).map_err(|_| {
                ApiError::invalid(
                    &format!("{at}/timestamp"),
                    "not a time in epoch milliseconds",
                )
            })
        })
        .transpose()?;
    let mut context = Map::new();
    if let Some(session) = event.session_id {
        context.insert("session_id".into(), Value::String(session));
    }
    Ok(NewEvent {
        id: None,
        identities,
        name: event.name,
        at: when,
        properties: event.properties.unwrap_or_default(),
        context,
        device: event.device_data.unwrap_or_default(),
    })
}

async fn ingest_events(
    state: &AppState,
    caller: Result<Caller, ApiError>,
    enrichment: Enrichment,
    ip: Option<IpAddr>,
    events: Vec<NewEvent>,
) -> Result<Response, UserFluxError> {
    let caller = caller?;
    let ws = caller.write()?;
    let batch = EventBatch {
        events,
        request_ip: ip.filter(|_| enrichment.location_enrichment == Some(true)),
    };
    state
        .service
        .ingest_events(
            ws,
            &caller.context(crate::http::extract::OriginTag(None)),
            &batch,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn ingest(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(enrichment): Query<Enrichment>,
    ClientIp(ip): ClientIp,
    Body(body): Body<EventBody>,
) -> Result<Response, UserFluxError> {
    let event = new_event(&state, body, "")?;
    ingest_events(&state, caller, enrichment, ip, vec![event]).await
}

async fn ingest_batch(
    State(state): State<AppState>,
    caller: Result<Caller, ApiError>,
    Query(enrichment): Query<Enrichment>,
    ClientIp(ip): ClientIp,
    Body(body): Body<BatchBody>,
) -> Result<Response, UserFluxError> {
    if body.events.is_empty() || body.events.len() > MAX_BATCH {
        return Err(ApiError::invalid("/events", format!("send 1 to {MAX_BATCH} events")).into());
    }
    let events = body
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| new_event(&state, e, &format!("/events/{i}")))
        .collect::<Result<Vec<_>, _>>()?;
    ingest_events(&state, caller, enrichment, ip, events).await
}
