//! `/v1/segments`: named filters whose members are kept current (admin keys define them; any
//! reading key lists them and their members).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::{SegmentBody, SegmentState};

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentView {
    #[schema(example = "paying")]
    pub key: String,
    #[schema(example = "Paying users")]
    pub name: String,
    /// The filter as it was written (string or JSON form).
    #[schema(value_type = Object, example = "properties.plan = \"pro\"")]
    pub filter: Value,
    /// `backfilling` while the members are being brought in line with a new filter (in the
    /// background); `ready` once they match it.
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Counts changes of the filter.
    pub version: i64,
    /// When the members were last checked against the whole workspace.
    pub reconciled_at: Option<String>,
    /// How many profiles are members (on `GET /v1/segments/{key}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<u64>,
    pub created_at: String,
    pub updated_at: String,
}

impl From<SegmentState> for SegmentView {
    fn from(state: SegmentState) -> Self {
        let status = state.status();
        let s = state.record;
        Self {
            key: s.key,
            name: s.name,
            filter: s.filter,
            status,
            version: s.version,
            reconciled_at: s.reconciled_at.map(|t| t.to_string()),
            members: state.members,
            created_at: s.created_at.to_string(),
            updated_at: s.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SegmentList {
    pub segments: Vec<SegmentView>,
}

#[utoipa::path(
    get, path = "/v1/segments", tag = "segments",
    responses((status = 200, body = SegmentList)),
    security(("api_key" = []))
)]
/// The workspace's segments, by key.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<SegmentList>, ApiError> {
    let ws = caller.read()?;
    let segments = state.service.segments(ws).await?;
    Ok(Json(SegmentList {
        segments: segments.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get, path = "/v1/segments/{key}", tag = "segments",
    params(("key" = String, Path, description = "The segment's key")),
    responses((status = 200, body = SegmentView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// One segment, with its member count and backfill status.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<Json<SegmentView>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.segment(ws, &key).await?.into()))
}

#[utoipa::path(
    put, path = "/v1/segments/{key}", tag = "segments",
    params(("key" = String, Path, description = "1 to 64 lower-case letters, digits, `_` and `-`")),
    request_body = SegmentBody,
    responses(
        (status = 201, description = "Created; its members are backfilled in the background", body = SegmentView),
        (status = 200, description = "Replaced; a changed filter is backfilled in the background", body = SegmentView),
        (status = 400, description = "The filter does not parse", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Define (or redefine) a segment: a name and a filter in the search language.
///
/// Every write keeps membership current from then on; the profiles already stored are
/// sorted in the background, and the segment's `status` is `backfilling` until that is
/// done. Entering and leaving are entries in the change log (operation `segments`). A
/// filter comparing with `now` (`computed.last_seen_at < now-30d`) is
/// re-checked periodically, since time alone moves profiles in and out.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    ApiJson(body): ApiJson<SegmentBody>,
) -> Result<Response, ApiError> {
    let ws = caller.admin()?;
    // A filter that does not parse is answered as search answers it: 400, with the position.
    crate::http::v1::search::parse_filter(Some(body.filter.clone()))?;
    let (segment, created) = state.service.define_segment(ws, &key, &body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(SegmentView::from(segment))).into_response())
}

#[utoipa::path(
    delete, path = "/v1/segments/{key}", tag = "segments",
    params(("key" = String, Path, description = "The segment's key")),
    responses((status = 204, description = "Deleted, with its memberships"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Delete a segment; its profiles stop listing it.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ws = caller.admin()?;
    state.service.delete_segment(ws, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersParams {
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// Only members after this profile id (`next_after` of the previous page).
    pub after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub profile_id: String,
    /// When the profile entered the segment (RFC 3339).
    pub since: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembersPage {
    /// In profile id order.
    pub members: Vec<MemberView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/segments/{key}/members", tag = "segments",
    params(("key" = String, Path, description = "The segment's key"), MembersParams),
    responses(
        (status = 200, body = MembersPage),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// A segment's members, one page at a time.
pub async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(key): Path<String>,
    Query(params): Query<MembersParams>,
) -> Result<Json<MembersPage>, ApiError> {
    let ws = caller.read()?;
    let limit = crate::service::search::limit(params.limit)?;
    let members = state
        .service
        .segment_members(ws, &key, params.after.as_deref(), limit)
        .await?;
    let next_after = (members.len() as u64 == u64::from(limit))
        .then(|| members.last().map(|m| m.profile_id.0.clone()))
        .flatten();
    Ok(Json(MembersPage {
        members: members
            .into_iter()
            .map(|m| MemberView {
                profile_id: m.profile_id.0,
                since: m.since.to_string(),
            })
            .collect(),
        next_after,
    }))
}
