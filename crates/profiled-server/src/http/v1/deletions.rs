//! Forgetting people: `DELETE /v1/profiles/{id}` (and by identity) answer with a deletion
//! receipt; `/v1/deletions` lists receipts and erases in bulk.

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use profiled_core::identity::IdentityMap;
use profiled_core::{Identity, ProfileId};
use profiled_store::DeletionReceipt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::extract::{
    Caller, IfMatch, OriginTag, content_type_is, from_value_at, parse_json, read_body,
};
use crate::http::problem::{ApiError, Problem};
use crate::service::search::Search;

/// Proof that a profile was erased. It holds nothing personal: identity values appear only
/// as their SHA-256.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionView {
    pub id: String,
    pub profile_id: String,
    /// RFC 3339, UTC.
    pub requested_at: String,
    /// RFC 3339, UTC: when the profile, its identities and its change log were gone.
    pub completed_at: String,
    /// Who asked: `key:<id>` for an API key.
    pub requested_by: String,
    /// Lowercase hex SHA-256 of each identity value the profile carried.
    pub identifiers: Vec<String>,
}

impl From<DeletionReceipt> for DeletionView {
    fn from(r: DeletionReceipt) -> Self {
        Self {
            id: r.id,
            profile_id: r.profile_id.0,
            requested_at: r.requested_at.to_string(),
            completed_at: r.completed_at.to_string(),
            requested_by: r.requested_by,
            identifiers: r.identifiers,
        }
    }
}

#[utoipa::path(
    delete, path = "/v1/profiles/{id}", tag = "deletions",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, description = "Erased: the profile, its identities, its change log and merge snapshots", body = DeletionView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Forget a profile.
///
/// Erases the profile with its identities, its change-log entries and the merge snapshots
/// that hold it; only a `delete` entry without values stays in the feed. The identities are
/// free to be used again. The receipt is also kept at `/v1/deletions/{id}`.
pub async fn forget(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
) -> Result<Json<DeletionView>, ApiError> {
    let ws = caller.write()?;
    let receipt = state
        .service
        .forget(ws, &caller.context(origin), &ProfileId(id), precondition)
        .await?;
    Ok(Json(receipt.into()))
}

#[utoipa::path(
    delete, path = "/v1/profiles/by/{kind}/{value}", tag = "deletions",
    params(("kind" = String, Path), ("value" = String, Path, description = "URL-encoded"), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = DeletionView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Forget the profile carrying an identity.
pub async fn forget_by_identity(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path((kind, value)): Path<(String, String)>,
    IfMatch(precondition): IfMatch,
) -> Result<Json<DeletionView>, ApiError> {
    let ws = caller.write()?;
    let identity = Identity::parse(&kind, &value, state.service.limits())
        .map_err(|message| ApiError::invalid("/identity", message))?;
    let receipt = state
        .service
        .forget_by_identity(ws, &caller.context(origin), &identity, precondition)
        .await?;
    Ok(Json(receipt.into()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeletionsParams {
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// Only receipts older than this one (pass `next_before` of the previous page).
    pub before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeletionsPage {
    /// Newest first.
    pub deletions: Vec<DeletionView>,
    /// Pass as `before` for older receipts; null when there are none.
    pub next_before: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/deletions", tag = "deletions",
    params(DeletionsParams),
    responses((status = 200, body = DeletionsPage)),
    security(("api_key" = []))
)]
/// The workspace's deletion receipts, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<DeletionsParams>,
) -> Result<Json<DeletionsPage>, ApiError> {
    let ws = caller.read()?;
    let limit = crate::service::search::limit(params.limit)?;
    let receipts = state
        .service
        .deletions(ws, params.before.as_deref(), limit)
        .await?;
    let next_before = (receipts.len() as u64 == u64::from(limit))
        .then(|| receipts.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(DeletionsPage {
        deletions: receipts.into_iter().map(Into::into).collect(),
        next_before,
    }))
}

#[utoipa::path(
    get, path = "/v1/deletions/{id}", tag = "deletions",
    params(("id" = String, Path)),
    responses((status = 200, body = DeletionView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// One deletion receipt.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<DeletionView>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.deletion(ws, &id).await?.into()))
}

/// Whom a bulk deletion erases.
#[derive(Debug)]
pub enum Targets {
    Identities(Vec<Identity>),
    Filter(profiled_core::filter::Filter),
}

/// `application/json`: `{"identities": [{"email": "a@x.io"}, …]}` or `{"filter": "…"}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionsBody {
    /// Identity objects; every profile one of them leads to is erased.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub identities: Option<Vec<IdentityMap>>,
    /// A filter (a string in the search language, or its JSON form); every matching profile
    /// is erased.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
}

/// The most identities one bulk request may name.
const MAX_TARGETS: usize = 10_000;

impl FromRequest<AppState> for Targets {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limits = state.service.limits().clone();
        let ndjson = content_type_is(req.headers(), "application/x-ndjson");
        let csv = content_type_is(req.headers(), "text/csv");
        let json = content_type_is(req.headers(), "application/json");
        if !(ndjson || csv || json) {
            return Err(ApiError::UnsupportedMediaType(
                "send `application/json`, `application/x-ndjson` (one identity object per line) or `text/csv` (a header of identity kinds)".into(),
            ));
        }
        let bytes = read_body(req, state).await?;
        let parse = |map: &IdentityMap, base: &str| {
            map.parse(base, &limits)
                .map_err(crate::service::ServiceError::from)
        };
        let identities = if json {
            let body: DeletionsBody = parse_json(&bytes)?;
            match (body.identities, body.filter) {
                (None, Some(filter)) => {
                    let filter = crate::http::v1::search::parse_filter(Some(filter))?;
                    if filter == profiled_core::filter::Filter::all() {
                        return Err(ApiError::invalid(
                            "/filter",
                            "this filter matches every profile; name a condition",
                        ));
                    }
                    return Ok(Targets::Filter(filter));
                }
                (Some(maps), None) => {
                    let mut identities = Vec::new();
                    for (i, map) in maps.iter().enumerate() {
                        identities.extend(parse(map, &format!("/identities/{i}"))?);
                    }
                    identities
                }
                _ => {
                    return Err(ApiError::invalid(
                        "",
                        "name either `identities` (a list of identity objects) or a `filter`",
                    ));
                }
            }
        } else if ndjson {
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| ApiError::MalformedBody("the body is not UTF-8".into()))?;
            let mut identities = Vec::new();
            for (i, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let value: serde_json::Value = serde_json::from_str(line).map_err(|e| {
                    ApiError::MalformedBody(format!("line {} is not valid JSON: {e}", i + 1))
                })?;
                let map: IdentityMap = from_value_at(value, &format!("/{}", i + 1))?;
                identities.extend(parse(&map, &format!("/{}", i + 1))?);
            }
            identities
        } else {
            let mut reader = csv::Reader::from_reader(&bytes[..]);
            let kinds = reader
                .headers()
                .map_err(|e| ApiError::MalformedBody(format!("the CSV header does not read: {e}")))?
                .clone();
            let mut identities = Vec::new();
            for (i, record) in reader.records().enumerate() {
                let record = record.map_err(|e| {
                    ApiError::MalformedBody(format!("CSV row {} does not read: {e}", i + 2))
                })?;
                for (kind, value) in kinds.iter().zip(record.iter()) {
                    if !value.is_empty() {
                        identities.push(Identity::parse(kind, value, &limits).map_err(
                            |message| ApiError::invalid(&format!("/{}/{kind}", i + 2), message),
                        )?);
                    }
                }
            }
            identities
        };
        if identities.is_empty() {
            return Err(ApiError::invalid("", "name at least one identity"));
        }
        if identities.len() > MAX_TARGETS {
            return Err(ApiError::invalid(
                "",
                format!("at most {MAX_TARGETS} identities per request; split the list"),
            ));
        }
        Ok(Targets::Identities(identities))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkDeletion {
    /// One receipt per erased profile.
    pub deletions: Vec<DeletionView>,
    /// Identities that led to no profile.
    pub not_found: usize,
}

#[utoipa::path(
    post, path = "/v1/deletions", tag = "deletions",
    request_body(
        description = "Identities (JSON, NDJSON or CSV) or a filter",
        content(
            (DeletionsBody = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )
    ),
    responses(
        (status = 200, body = BulkDeletion),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Forget many profiles at once (admin keys only).
///
/// Names the profiles by identities — a JSON list, NDJSON with one identity object per line,
/// or CSV whose header names identity kinds (`email,user_id`) — or by a filter. Each profile
/// gets its own receipt.
pub async fn bulk(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    targets: Targets,
) -> Result<Json<BulkDeletion>, ApiError> {
    let ws = caller.admin()?;
    let ctx = caller.context(origin);
    let (receipts, not_found) = match targets {
        Targets::Identities(identities) => {
            state
                .service
                .forget_identities(ws, &ctx, &identities)
                .await?
        }
        Targets::Filter(filter) => {
            let mut receipts = Vec::new();
            loop {
                // Each page is erased before the next is read, so the search always starts over.
                let page = state
                    .service
                    .search(
                        ws,
                        Search {
                            filter: filter.clone(),
                            sort: Vec::new(),
                            limit: 1000,
                            cursor: None,
                        },
                    )
                    .await?;
                if page.profiles.is_empty() {
                    break;
                }
                for profile in page.profiles {
                    match state.service.forget(ws, &ctx, &profile.id, None).await {
                        Ok(receipt) => receipts.push(receipt),
                        // Erased meanwhile by someone else.
                        Err(crate::service::ServiceError::NotFound(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            (receipts, 0)
        }
    };
    Ok(Json(BulkDeletion {
        deletions: receipts.into_iter().map(Into::into).collect(),
        not_found,
    }))
}
