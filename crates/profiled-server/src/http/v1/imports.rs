//! `/v1/imports`: bulk upserts and deletes from NDJSON or CSV, streamed.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use profiled_core::import::{ImportCounts, ImportFailure};
use profiled_store::ImportRecord;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::http::AppState;
use crate::http::extract::{Caller, OriginTag, content_type_is};
use crate::http::problem::{ApiError, Problem};
use crate::service::imports::{ImportFormat, Importer};

/// An import job.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub id: String,
    /// `running`, `completed`, `failed` (the input broke off; see `error`) or `interrupted`
    /// (the server stopped while it ran).
    pub status: String,
    /// `ndjson` or `csv`; `chameleon` for a batch of Chameleon's profile webhook
    /// (`/compat/chameleon`), whose failures number the batch's items from 1;
    /// `mediarithmics:<import id>` for an execution of a mediarithmics document import.
    pub format: String,
    pub requested_by: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
    #[schema(value_type = Object, example = json!({"read": 3, "created": 1, "updated": 1, "unchanged": 0, "deleted": 0, "skipped": 0, "failed": 1}))]
    pub counts: ImportCounts,
    /// The failed lines (the first 1,000), by line number, with the reason; nothing of them
    /// was written.
    #[schema(value_type = Vec<Object>)]
    pub failures: Vec<ImportFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<ImportRecord> for ImportView {
    fn from(r: ImportRecord) -> Self {
        Self {
            id: r.id,
            status: r.status,
            format: r.format,
            requested_by: r.requested_by,
            started_at: r.started_at.to_string(),
            updated_at: r.updated_at.to_string(),
            finished_at: r.finished_at.map(|t| t.to_string()),
            counts: r.counts,
            failures: r.failures,
            error: r.error,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// `ndjson` or `csv`; by default taken from the content type (`application/x-ndjson`,
    /// `text/csv`).
    pub format: Option<String>,
}

#[utoipa::path(
    post, path = "/v1/imports", tag = "imports",
    params(ImportParams),
    request_body(
        description = "NDJSON: one command per line, `{\"operation\": \"UPSERT\"|\"DELETE\", \"identities\": {...}, \"properties\": {...}, \"mode\": \"merge\"|\"replace\"}`. CSV: a header of identity and property columns, one profile per row.",
        content((String = "application/x-ndjson"), (String = "text/csv"))
    ),
    responses(
        (status = 201, description = "The import ran; its report", body = ImportView),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The CSV header does not name columns profiled understands", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Import profiles.
///
/// The body is read as it arrives, never whole, so it may be any size. Each line is one
/// command and one transaction: a bad line is reported with its number and reason, changes
/// nothing, and does not stop the import. The answer comes when the body is done;
/// meanwhile `GET /v1/imports` shows the job running, with its counts.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Query(params): Query<ImportParams>,
    request: Request,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let format = match params.format.as_deref() {
        Some(text) => ImportFormat::parse(text)
            .ok_or_else(|| ApiError::invalid("/format", "use `ndjson` or `csv`"))?,
        None if content_type_is(request.headers(), "application/x-ndjson") => ImportFormat::Ndjson,
        None if content_type_is(request.headers(), "text/csv") => ImportFormat::Csv,
        None => {
            return Err(ApiError::UnsupportedMediaType(
                "send `application/x-ndjson` or `text/csv` (or name `?format=`)".into(),
            ));
        }
    };
    let importer =
        Importer::start(state.service.clone(), ws, caller.context(origin), format).await?;
    let record = feed_body(importer, request.into_body()).await?;
    let location = HeaderValue::try_from(format!("/v1/imports/{}", record.id))
        .expect("an id is a valid header value");
    let mut response = (StatusCode::CREATED, Json(ImportView::from(record))).into_response();
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// Streams a request body into an import and finishes it. A body that breaks off aborts
/// the job (what was read stays applied, and the record says why the rest is missing).
pub async fn feed_body(
    mut importer: Importer,
    body: axum::body::Body,
) -> Result<profiled_store::ImportRecord, ApiError> {
    let mut body = body.into_data_stream();
    while let Some(chunk) = body.next().await {
        let fed = match chunk {
            Ok(bytes) => importer.feed(&bytes).await,
            Err(e) => {
                importer.abort(format!("the body broke off: {e}")).await?;
                return Err(ApiError::MalformedBody(format!(
                    "the body could not be read: {e}"
                )));
            }
        };
        if let Err(e) = fed {
            importer.abort(e.to_string()).await?;
            return Err(e.into());
        }
    }
    Ok(importer.finish().await?)
}

#[utoipa::path(
    get, path = "/v1/imports/{id}", tag = "imports",
    params(("id" = String, Path)),
    responses((status = 200, body = ImportView), (status = 404, body = Problem, content_type = "application/problem+json")),
    security(("api_key" = []))
)]
/// An import job: status, counts and failed lines.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ImportView>, ApiError> {
    let ws = caller.read()?;
    Ok(Json(state.service.import(ws, &id).await?.into()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportsPage {
    /// Newest first, at most 100.
    pub imports: Vec<ImportView>,
}

#[utoipa::path(
    get, path = "/v1/imports", tag = "imports",
    responses((status = 200, body = ImportsPage)),
    security(("api_key" = []))
)]
/// The workspace's latest import jobs, running ones included.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ImportsPage>, ApiError> {
    let ws = caller.read()?;
    let imports = state.service.imports(ws, 100).await?;
    Ok(Json(ImportsPage {
        imports: imports.into_iter().map(Into::into).collect(),
    }))
}
