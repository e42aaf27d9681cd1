//! `/v1/companies`: accounts profiles belong to, each with its own `uid` and properties.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller};
use crate::http::problem::{ApiError, Problem};
use crate::service::CompanyUpsert;
use profiled_store::{CompanyPage, CompanyRecord};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CompanyView {
    /// Server-assigned, stable; profiles show it as `company_id`.
    pub id: String,
    /// The client's identifier for the company, unique in the workspace.
    #[schema(example = "acme")]
    pub uid: String,
    #[schema(value_type = Object, example = json!({"name": "Acme", "plan": "enterprise"}))]
    pub properties: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

impl From<CompanyRecord> for CompanyView {
    fn from(c: CompanyRecord) -> Self {
        Self {
            id: c.id,
            uid: c.uid,
            properties: c.properties,
            created_at: c.created_at.to_string(),
            updated_at: c.updated_at.to_string(),
            version: c.version,
        }
    }
}

/// Create a company or merge properties into it, by uid.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyUpsertBody {
    #[schema(example = "acme")]
    pub uid: String,
    /// Merged into the company's properties (JSON Merge Patch: `null` removes a key).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

#[utoipa::path(
    post, path = "/v1/companies", tag = "companies",
    request_body = CompanyUpsertBody,
    responses(
        (status = 201, description = "Created", body = CompanyView),
        (status = 200, description = "Updated", body = CompanyView),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Upsert a company by uid.
pub async fn upsert(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CompanyUpsertBody>,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let company = CompanyUpsert::new(&body.uid, body.properties, "/uid")?;
    let (record, created) = state.service.upsert_company(ws, &company).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    if caller.scope.can_read() {
        Ok((status, Json(CompanyView::from(record))).into_response())
    } else {
        // A write-only key may write, never read.
        Ok((
            status,
            Json(serde_json::json!({"id": record.id, "version": record.version})),
        )
            .into_response())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompaniesParams {
    /// Page size: 1 to 1000, default 50.
    pub limit: Option<u32>,
    /// Only companies after this id (`next_after` of the previous page).
    pub after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompaniesPage {
    /// In id order.
    pub companies: Vec<CompanyView>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/companies", tag = "companies",
    params(CompaniesParams),
    responses((status = 200, body = CompaniesPage)),
    security(("api_key" = []))
)]
/// The workspace's companies, one page at a time.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<CompaniesParams>,
) -> Result<Json<CompaniesPage>, ApiError> {
    let ws = caller.read()?;
    let limit = crate::service::search::limit(params.limit)?;
    let companies = state
        .service
        .companies(
            ws,
            &CompanyPage {
                after: params.after.as_deref(),
                limit,
                ..CompanyPage::default()
            },
        )
        .await?;
    let next_after = (companies.len() as u64 == u64::from(limit))
        .then(|| companies.last().map(|c| c.id.clone()))
        .flatten();
    Ok(Json(CompaniesPage {
        companies: companies.into_iter().map(Into::into).collect(),
        next_after,
    }))
}

#[utoipa::path(
    get, path = "/v1/companies/{id}", tag = "companies",
    params(("id" = String, Path, description = "Company id")),
    responses((status = 200, body = CompanyView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Get a company by id.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CompanyView>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.company(ws, &id).await?.into()))
}

#[utoipa::path(
    get, path = "/v1/companies/by/uid/{uid}", tag = "companies",
    params(("uid" = String, Path, description = "The company's uid (URL-encoded)")),
    responses((status = 200, body = CompanyView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Get a company by uid.
pub async fn get_by_uid(
    State(state): State<AppState>,
    caller: Caller,
    Path(uid): Path<String>,
) -> Result<Json<CompanyView>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.company_by_uid(ws, &uid).await?.into()))
}

#[utoipa::path(
    delete, path = "/v1/companies/{id}", tag = "companies",
    params(("id" = String, Path, description = "Company id")),
    responses((status = 204, description = "Deleted; its profiles belong to no company"), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// Delete a company; its profiles stay, belonging to none.
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ws = caller.write()?;
    state.service.delete_company(ws, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
