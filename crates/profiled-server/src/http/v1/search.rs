//! `POST /v1/profiles/search`, `GET /v1/profiles`, `POST /v1/profiles/count`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use profiled_core::filter::Filter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::profile_json;
use super::profiles::ProfileView;
use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::search::{limit, sort_keys};
use crate::service::{Page, Search};
use profiled_core::RawProfile;

/// A search. Every field is optional: no filter matches every profile.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// A filter in string form (`properties.plan = "pro" and computed.percent < 50`) or as a
    /// JSON tree (`{"and": [{"field": "properties.plan", "op": "=", "value": "pro"}]}`).
    #[schema(value_type = Option<Object>, example = "properties.plan = \"pro\"")]
    pub filter: Option<Value>,
    /// Sort keys, most significant first; ties are broken by `id`.
    #[serde(default)]
    pub sort: Vec<SortBody>,
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SortBody {
    #[schema(example = "properties.age")]
    pub field: String,
    #[serde(default)]
    pub order: SortOrder,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// A filter in string form.
    pub filter: Option<String>,
    /// Comma-separated sort fields; `-` before a field sorts it descending: `-properties.age,created_at`.
    pub sort: Option<String>,
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub profiles: Vec<ProfileView>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<RawProfile>> for SearchResult {
    fn from(page: Page<RawProfile>) -> Self {
        Self {
            profiles: page.profiles.into_iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountBody {
    /// A filter in string or JSON form; none counts every profile.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CountResult {
    pub count: u64,
}

/// Parses a filter given as a string or a JSON tree at `/filter` of a request.
pub(crate) fn parse_filter(value: Option<Value>) -> Result<Filter, ApiError> {
    let parsed = match value {
        None | Some(Value::Null) => return Ok(Filter::all()),
        Some(Value::String(text)) => Filter::parse(&text),
        Some(tree @ Value::Object(_)) => Filter::from_json(&tree),
        Some(_) => {
            return Err(ApiError::invalid(
                "/filter",
                "a filter is a string or a JSON object",
            ));
        }
    };
    parsed.map_err(|error| ApiError::BadFilter {
        error,
        at: "/filter".into(),
    })
}

#[utoipa::path(
    post, path = "/v1/profiles/search", tag = "search",
    request_body = SearchBody,
    responses(
        (status = 200, body = SearchResult),
        (status = 400, description = "The filter does not parse; `position` or the violation's pointer says where", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Search profiles with a filter, sorted, one page at a time.
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SearchBody>,
) -> Result<Response, ApiError> {
    let ws = caller.read()?;
    let sort = sort_keys(
        body.sort
            .into_iter()
            .map(|k| (k.field, matches!(k.order, SortOrder::Desc)))
            .collect(),
    )?;
    let search = Search {
        filter: parse_filter(body.filter)?,
        sort,
        limit: limit(body.limit)?,
        cursor: body.cursor,
    };
    let page = state.service.search_raw(ws, search).await?;
    Ok(profile_json::response(
        StatusCode::OK,
        profile_json::search_page(&page),
    ))
}

#[utoipa::path(
    get, path = "/v1/profiles", tag = "search",
    params(SearchParams),
    responses(
        (status = 200, body = SearchResult),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// List profiles, optionally filtered and sorted (the query-string form of search).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<SearchParams>,
) -> Result<Response, ApiError> {
    let ws = caller.read()?;
    let sort = params
        .sort
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let s = s.trim();
            match s.strip_prefix('-') {
                Some(field) => (field.to_owned(), true),
                None => (s.strip_prefix('+').unwrap_or(s).to_owned(), false),
            }
        })
        .collect();
    let search = Search {
        filter: parse_filter(params.filter.map(Value::String))?,
        sort: sort_keys(sort)?,
        limit: limit(params.limit)?,
        cursor: params.cursor,
    };
    let page = state.service.search_raw(ws, search).await?;
    Ok(profile_json::response(
        StatusCode::OK,
        profile_json::search_page(&page),
    ))
}

#[utoipa::path(
    post, path = "/v1/profiles/count", tag = "search",
    request_body = CountBody,
    responses(
        (status = 200, body = CountResult),
        (status = 400, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Count the profiles a filter matches.
pub async fn count(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CountBody>,
) -> Result<Json<CountResult>, ApiError> {
    let ws = caller.read()?;
    let count = state.service.count(ws, &parse_filter(body.filter)?).await?;
    Ok(Json(CountResult { count }))
}
