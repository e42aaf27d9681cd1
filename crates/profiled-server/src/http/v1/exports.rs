//! `GET /v1/exports`: every matching profile, streamed as NDJSON or CSV in constant memory.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use crate::http::AppState;
use crate::http::extract::Caller;
use crate::http::problem::{ApiError, Problem};
use crate::http::v1::search::parse_filter;
use crate::service::exports::{ExportCursor, ExportFormat, Renderer};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `ndjson` (default): one profile per line, as the API shows it. `csv`: one row per
    /// profile.
    pub format: Option<String>,
    /// Only profiles matching this filter (the search language); all when absent.
    pub filter: Option<String>,
    /// CSV columns, comma-separated: `id`, `created_at`, `updated_at`, `version`,
    /// `identities.<kind>`, `properties.<path>`, `computed.<path>`, or `identities`,
    /// `properties`, `computed` as JSON. Default:
    /// `id,created_at,updated_at,version,identities,properties,computed`.
    pub columns: Option<String>,
}

#[utoipa::path(
    get, path = "/v1/exports", tag = "search",
    params(ExportParams),
    responses(
        (status = 200, description = "The profiles, streamed", content(
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Export profiles.
///
/// Streams every profile matching the filter, in id order, reading a page of 1,000 at a
/// time: the server's memory stays flat whatever the size. Each page is a consistent read;
/// writes made while the export runs show up if they land on a page not yet read.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let ws = caller.read()?;
    let format = match params.format.as_deref() {
        None => ExportFormat::Ndjson,
        Some(text) => ExportFormat::parse(text)
            .ok_or_else(|| ApiError::invalid("/format", "use `ndjson` or `csv`"))?,
    };
    let renderer = Renderer::new(format, params.columns.as_deref())?;
    let filter = parse_filter(params.filter.map(Value::String))?;
    let service = state.service.clone();
    let header_bytes = renderer.header();
    // The first page is read before answering, so that a failing store is a clean 500.
    let mut cursor = ExportCursor::new(filter);
    let first = service.export_page(ws, &mut cursor).await?;
    let first = Bytes::from(
        [
            header_bytes,
            first.map(|p| renderer.page(&p)).unwrap_or_default(),
        ]
        .concat(),
    );
    // The rest is read and rendered a page ahead of the client, by a task of its own; it
    // stops when the client goes away (the channel closes).
    let (pages, rest) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    tokio::spawn(async move {
        loop {
            let page = match service.export_page(ws, &mut cursor).await {
                Ok(Some(profiles)) => Ok(Bytes::from(renderer.page(&profiles))),
                Ok(None) => return,
                Err(e) => {
                    // The status is already sent: cut the body short, so the client sees an
                    // incomplete transfer rather than a file that looks whole.
                    tracing::error!(error = %e, "export failed midway");
                    Err(std::io::Error::other("export failed"))
                }
            };
            let failed = page.is_err();
            if pages.send(page).await.is_err() || failed {
                return;
            }
        }
    });
    let rest = futures_util::stream::unfold(rest, |mut rest| async move {
        rest.recv().await.map(|page| (page, rest))
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::once(async { Ok::<_, std::io::Error>(first) }),
        rest,
    );
    let mut response = Body::from_stream(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let file = match format {
        ExportFormat::Ndjson => "attachment; filename=\"profiles.ndjson\"",
        ExportFormat::Csv => "attachment; filename=\"profiles.csv\"",
    };
    response
        .headers_mut()
        .insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(file));
    Ok(response)
}
