//! `/v1/events`: batches of events, each upserting its profile and updating what its events
//! add up to; `/v1/profiles/{id}/events`: a profile's kept events.

use axum::Json;
use axum::extract::{Path, Query, State};
use jiff::Timestamp;
use profiled_core::ProfileId;
use profiled_core::identity::IdentityMap;
use profiled_store::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller, ClientIp, OriginTag};
use crate::http::problem::{ApiError, Problem};
use crate::service::{EventBatch, NewEvent};

/// One event.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// Your id for the event: sending it again (a retry) does not count it twice.
    #[schema(example = "3f1c2a")]
    pub id: Option<String>,
    /// Whose event it is, as in `POST /v1/profiles`: the profile carrying any of them, or a
    /// new one carrying all of them.
    pub identities: IdentityMap,
    #[schema(example = "purchase")]
    pub name: String,
    /// When it happened: RFC 3339, or epoch milliseconds; now when absent.
    #[schema(value_type = Option<String>, example = "2026-11-22T10:00:00Z")]
    pub timestamp: Option<Value>,
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"amount": 42}))]
    pub properties: Map<String, Value>,
    /// `ip` and `user_agent` fill the profile's location and device; the rest is kept with
    /// the event.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"ip": "203.0.113.7", "user_agent": "Mozilla/5.0 ..."}))]
    pub context: Map<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsBody {
    /// 1 to 1000 events.
    pub events: Vec<EventBody>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestParams {
    /// Locate events without `context.ip` by the address of this request (for calls made
    /// straight from the end user's device).
    #[serde(default)]
    pub use_request_ip: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestedView {
    /// Events kept.
    pub accepted: usize,
    /// Events whose `id` was already known: skipped.
    pub duplicates: usize,
    /// The profile id of each event, in order.
    pub profiles: Vec<String>,
}

fn timestamp(value: Option<&Value>, pointer: &str) -> Result<Option<Timestamp>, ApiError> {
    let bad = || {
        ApiError::invalid(
            pointer,
            "a timestamp is RFC 3339 (2026-01-02T03:04:05Z) or epoch milliseconds",
        )
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => text.parse().map(Some).map_err(|_| bad()),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .map(Some)
            .ok_or_else(bad),
        Some(_) => Err(bad()),
    }
}

/// Turns a request's events into the service's, checking identities and timestamps.
pub(crate) fn new_events(
    events: Vec<EventBody>,
    state: &AppState,
) -> Result<Vec<NewEvent>, ApiError> {
    let mut violations = Vec::new();
    let mut parsed = Vec::with_capacity(events.len());
    for (i, event) in events.into_iter().enumerate() {
        let identities = event
            .identities
            .parse(&format!("/events/{i}/identities"), state.service.limits());
        let at = timestamp(event.timestamp.as_ref(), &format!("/events/{i}/timestamp"));
        match (identities, at) {
            (Ok(identities), _) if identities.is_empty() => {
                violations.push(profiled_core::Violation::new(
                    format!("/events/{i}/identities"),
                    "name at least one identity, e.g. {\"anonymous_id\": \"a1\"}",
                ))
            }
            (Ok(identities), Ok(at)) => parsed.push(NewEvent {
                id: event.id,
                identities,
                name: event.name,
                at,
                properties: event.properties,
                context: event.context,
                device: Map::new(),
            }),
            (identities, at) => {
                if let Err(profiled_core::DomainError::Invalid(v)) = identities {
                    violations.extend(v);
                }
                if let Err(ApiError::Invalid(v)) = at {
                    violations.extend(v);
                }
            }
        }
    }
    if violations.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::Invalid(violations))
    }
}

#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    params(IngestParams),
    request_body = EventsBody,
    responses(
        (status = 200, description = "Every event applied, in one transaction", body = IngestedView),
        (status = 422, description = "Some event is invalid; none was applied", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Send a batch of events.
///
/// Each event upserts the profile its identities name (creating one when none carries them)
/// and updates its computed values: `first_seen_at`, `last_seen_at`, `session_count`,
/// `event_counts.<name>`, `last_event_at.<name>` and the workspace's own computed
/// properties. The newest event's `context.ip` and `context.user_agent` fill `location` and
/// `device`. Events may arrive in any order.
pub async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    ClientIp(client_ip): ClientIp,
    Query(params): Query<IngestParams>,
    ApiJson(body): ApiJson<EventsBody>,
) -> Result<Json<IngestedView>, ApiError> {
    let ws = caller.write()?;
    let batch = EventBatch {
        events: new_events(body.events, &state)?,
        request_ip: client_ip.filter(|_| params.use_request_ip),
    };
    let ingested = state
        .service
        .ingest_events(ws, &caller.context(origin), &batch)
        .await?;
    Ok(Json(IngestedView {
        accepted: ingested.accepted,
        duplicates: ingested.duplicates,
        profiles: ingested.profiles.into_iter().map(|p| p.0).collect(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub name: String,
    /// When it happened (RFC 3339).
    pub timestamp: String,
    pub received_at: String,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    #[schema(value_type = Object)]
    pub context: Map<String, Value>,
}

impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> Self {
        Self {
            id: e.id,
            name: e.name,
            timestamp: e.at.to_string(),
            received_at: e.received_at.to_string(),
            properties: e.properties,
            context: e.context,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsParams {
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// Only events before this cursor (`next_before` of the previous page).
    pub before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    /// Newest first.
    pub events: Vec<EventView>,
    /// Pass as `before` for older events; null when there are none.
    pub next_before: Option<String>,
}

fn cursor(event: &StoredEvent) -> String {
    format!("{}_{}", event.at.as_microsecond(), event.id)
}

fn parse_cursor(text: &str) -> Result<(Timestamp, &str), ApiError> {
    text.split_once('_')
        .and_then(|(us, id)| {
            let at = Timestamp::from_microsecond(us.parse().ok()?).ok()?;
            Some((at, id))
        })
        .ok_or_else(|| ApiError::invalid("/before", "not a cursor this API gave out"))
}

#[utoipa::path(
    get, path = "/v1/profiles/{id}/events", tag = "events",
    params(("id" = String, Path, description = "Profile id"), EventsParams),
    responses(
        (status = 200, body = EventsPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// A profile's kept events, newest first (events older than the retention are gone).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<EventsParams>,
) -> Result<Json<EventsPage>, ApiError> {
    let ws = caller.read()?;
    let limit = crate::service::search::limit(params.limit)?;
    let before = params.before.as_deref().map(parse_cursor).transpose()?;
    let events = state
        .service
        .profile_events(ws, &ProfileId(id), before, limit)
        .await?;
    let next_before = (events.len() as u64 == u64::from(limit))
        .then(|| events.last().map(cursor))
        .flatten();
    Ok(Json(EventsPage {
        events: events.into_iter().map(Into::into).collect(),
        next_before,
    }))
}
