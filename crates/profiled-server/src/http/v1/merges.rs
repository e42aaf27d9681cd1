//! `POST /v1/profiles/{id}/merge`: explicit merges, and their dry runs.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use profiled_core::ProfileId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::profiles::ProfileView;
use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller, OriginTag};
use crate::http::problem::{ApiError, Problem};
use crate::service::{MergeOutcome, Unmerged};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The profiles to merge with this one.
    pub profile_ids: Vec<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MergeParams {
    /// Show what the merge would do, and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeView {
    /// The merge's id; null for a dry run.
    pub id: Option<String>,
    pub dry_run: bool,
    /// The surviving profile, as it is (or would be) after the merge.
    pub survivor: ProfileView,
    /// The profiles absorbed into it.
    pub absorbed_ids: Vec<String>,
    /// `properties.<key>` → the absorbed profile each taken value came from.
    #[schema(value_type = Object)]
    pub sources: Map<String, Value>,
}

impl MergeView {
    fn new(outcome: MergeOutcome, dry_run: bool) -> Self {
        Self {
            id: outcome.id,
            dry_run,
            survivor: outcome.survivor.into(),
            absorbed_ids: outcome.absorbed.into_iter().map(|id| id.0).collect(),
            sources: outcome.sources,
        }
    }
}

#[utoipa::path(
    post, path = "/v1/profiles/{id}/merge", tag = "profiles",
    params(("id" = String, Path), MergeParams),
    request_body = MergeBody,
    responses(
        (status = 200, description = "Merged (or, with dry_run, what would be)", body = MergeView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Different known users are never merged", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Merge profiles explicitly, by the same rules as an upsert that joins them: the profile with
/// a `user_id` (else the oldest) survives, its values win, different known users are refused.
pub async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path(id): Path<String>,
    Query(params): Query<MergeParams>,
    ApiJson(body): ApiJson<MergeBody>,
) -> Result<(StatusCode, Json<MergeView>), ApiError> {
    let ws = caller.write()?;
    caller.read()?; // the answer shows the profiles
    if body.profile_ids.is_empty() || body.profile_ids.len() > 50 {
        return Err(ApiError::invalid(
            "/profile_ids",
            "name 1 to 50 profiles to merge with this one",
        ));
    }
    let others: Vec<ProfileId> = body.profile_ids.into_iter().map(ProfileId).collect();
    let outcome = state
        .service
        .merge_profiles(
            ws,
            &caller.context(origin),
            &ProfileId(id),
            &others,
            params.dry_run,
        )
        .await?;
    Ok((
        StatusCode::OK,
        Json(MergeView::new(outcome, params.dry_run)),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnmergeView {
    /// The survivor after giving back what it took.
    pub survivor: ProfileView,
    /// The absorbed profiles, back as they were (with the writes since kept on the survivor).
    pub restored: Vec<ProfileView>,
}

impl From<Unmerged> for UnmergeView {
    fn from(u: Unmerged) -> Self {
        Self {
            survivor: u.survivor.into(),
            restored: u.restored.into_iter().map(Into::into).collect(),
        }
    }
}

#[utoipa::path(
    post, path = "/v1/merges/{id}/undo", tag = "profiles",
    params(("id" = String, Path, description = "The merge's id")),
    responses(
        (status = 200, body = UnmergeView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already undone, or the survivor is gone", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Undo a merge: the absorbed profiles return as they were; writes made since stay on the survivor.
pub async fn undo(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path(id): Path<String>,
) -> Result<Json<UnmergeView>, ApiError> {
    let ws = caller.write()?;
    caller.read()?;
    Ok(Json(
        state
            .service
            .undo_merge(ws, &caller.context(origin), &id)
            .await?
            .into(),
    ))
}

/// A merge into a profile (the absorbed profiles' contents are not shown).
#[derive(Debug, Serialize, ToSchema)]
pub struct MergeSummary {
    pub id: String,
    pub at: String,
    pub actor: String,
    pub absorbed_ids: Vec<String>,
    /// `properties.<key>` → the absorbed profile each value the survivor took came from.
    #[schema(value_type = Object)]
    pub sources: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undone_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MergeList {
    /// Newest first.
    pub merges: Vec<MergeSummary>,
}

#[utoipa::path(
    get, path = "/v1/profiles/{id}/merges", tag = "profiles",
    params(("id" = String, Path)),
    responses((status = 200, body = MergeList), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// The merges into a profile, newest first: what `POST /v1/merges/{id}/undo` takes.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<MergeList>, ApiError> {
    let ws = caller.read()?;
    let merges = state.service.merges_into(ws, &ProfileId(id)).await?;
    Ok(Json(MergeList {
        merges: merges
            .into_iter()
            .map(|m| MergeSummary {
                id: m.id,
                at: m.at.to_string(),
                actor: m.actor,
                absorbed_ids: m.absorbed.into_iter().map(|p| p.id.0).collect(),
                sources: m.sources,
                undone_at: m.undone_at.map(|t| t.to_string()),
            })
            .collect(),
    }))
}
