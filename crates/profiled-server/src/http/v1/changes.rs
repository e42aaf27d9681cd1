//! `GET /v1/profiles/{id}/history` and `GET /v1/changes`: the change log.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use profiled_core::ProfileId;
use profiled_core::change::{Change, KeyChange, Operation};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::extract::Caller;
use crate::http::problem::{ApiError, Problem};
use crate::service::search::limit;

/// One logged mutation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeView {
    /// Increases with every change of the workspace, in commit order.
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub profile_id: String,
    /// Who made it: `key:<id>` for an API key.
    pub actor: String,
    pub operation: Operation,
    /// The touched keys with their values before and after.
    pub changes: Vec<KeyChange>,
    /// The `Profiled-Origin` header of the request that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

impl From<Change> for ChangeView {
    fn from(c: Change) -> Self {
        Self {
            seq: c.seq,
            at: c.entry.at.to_string(),
            profile_id: c.entry.profile_id.0,
            actor: c.entry.actor,
            operation: c.entry.operation,
            changes: c.entry.changes,
            origin: c.entry.origin,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// Only changes older than this `seq` (pass `next_before` of the previous page).
    pub before: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// Newest first.
    pub changes: Vec<ChangeView>,
    /// Pass as `before` for older changes; null when there are none.
    pub next_before: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// The `next_after` of the previous call; 0 (the default) starts at the beginning.
    pub after: Option<i64>,
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// Long-poll: when there is no change yet, wait up to this long (`30s`, `500ms`, or
    /// seconds as a number; at most 60 s).
    pub wait: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    /// Oldest first.
    pub changes: Vec<ChangeView>,
    /// Pass as `after` next time: the last `seq` seen (or the given `after` when none).
    pub next_after: i64,
}

#[utoipa::path(
    get, path = "/v1/profiles/{id}/history", tag = "changes",
    params(("id" = String, Path), HistoryParams),
    responses((status = 200, body = HistoryPage), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// A profile's changes, newest first.
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<HistoryPage>, ApiError> {
    let ws = caller.read()?;
    let limit = limit(params.limit)?;
    let changes = state
        .service
        .history(ws, &ProfileId(id), params.before, limit)
        .await?;
    let next_before = (changes.len() as u64 == u64::from(limit))
        .then(|| changes.last().map(|c| c.seq))
        .flatten();
    Ok(Json(HistoryPage {
        changes: changes.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

#[utoipa::path(
    get, path = "/v1/changes", tag = "changes",
    params(FeedParams),
    responses((status = 200, body = FeedPage), (status = 422, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// The workspace's change feed, in commit order. A consumer that passes back `next_after`
/// misses no change and sees none twice, across restarts of either side.
pub async fn feed(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<FeedParams>,
) -> Result<Json<FeedPage>, ApiError> {
    let ws = caller.read()?;
    let after = params.after.unwrap_or(0);
    let wait = params
        .wait
        .as_deref()
        .map(parse_wait)
        .transpose()?
        .unwrap_or_default();
    let changes = state
        .service
        .changes(ws, after, limit(params.limit)?, wait)
        .await?;
    let next_after = changes.last().map_or(after, |c| c.seq);
    Ok(Json(FeedPage {
        changes: changes.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

/// `30s`, `500ms`, `2m` or a number of seconds.
fn parse_wait(text: &str) -> Result<Duration, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "/wait",
            "a wait is a duration such as 30s, 500ms or 1m (at most 60s)",
        )
    };
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let wait = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        _ => return Err(invalid()),
    };
    if wait > crate::service::changes::MAX_WAIT {
        return Err(invalid());
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_take_units_and_a_ceiling() {
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_wait("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_wait("5").unwrap(), Duration::from_secs(5));
        for bad in ["2m", "x", "10h", "-1s", ""] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }
}
