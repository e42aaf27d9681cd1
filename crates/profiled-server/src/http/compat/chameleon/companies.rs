//! Companies: retrieve and list (`/v3/analyze`), and the company webhook (`/v3/observe`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use profiled_core::{Violation, WorkspaceId};
use profiled_store::{CompanyPage, CompanyRecord};
use serde_json::{Map, Value, json};

use super::profiles::expand;
use super::view::{self, CompanyDetail, ProfileDetail};
use super::{Call, ChameleonError, id_bound, limit_param, names, text_param};
use crate::http::AppState;
use crate::service::CompanyUpsert;

type Reply = Result<Response, ChameleonError>;

fn detail(call: &Call) -> Result<CompanyDetail, ChameleonError> {
    let (_, detail) = expand(&call.params, ProfileDetail::All, CompanyDetail::All)?;
    Ok(match detail {
        CompanyDetail::Skip => CompanyDetail::Min,
        other => other,
    })
}

fn one(company: &CompanyRecord, detail: CompanyDetail) -> Response {
    axum::Json(json!({"company": view::company(company, detail)})).into_response()
}

/// `GET|POST /v3/analyze/companies/:id`
pub async fn show(State(state): State<AppState>, Path(id): Path<String>, call: Call) -> Reply {
    let ws = call.caller(&state, None).await?.read()?;
    let company = state.service.company(ws, &id).await?;
    Ok(one(&company, detail(&call)?))
}

/// `GET|POST /v3/analyze/company?uid=` (or `id`).
pub async fn lookup(State(state): State<AppState>, call: Call) -> Reply {
    let ws = call.caller(&state, None).await?.read()?;
    let company = if let Some(id) = text_param(&call.params, "id")? {
        state.service.company(ws, &id).await?
    } else if let Some(uid) = text_param(&call.params, "uid")? {
        state.service.company_by_uid(ws, &uid).await?
    } else {
        return Err(ChameleonError::unprocessable("send one of `id` or `uid`"));
    };
    Ok(one(&company, detail(&call)?))
}

/// `GET|POST /v3/analyze/companies`: newest first, `limit` (50, at most 500), `before` and
/// `after` (an id or a timestamp); `cursor.before` continues.
pub async fn list(State(state): State<AppState>, call: Call) -> Reply {
    let ws = call.caller(&state, None).await?.read()?;
    let limit = limit_param(&call.params)?;
    let before = id_bound(&call.params, "before")?;
    let after = id_bound(&call.params, "after")?;
    let companies = state
        .service
        .companies(
            ws,
            &CompanyPage {
                after: after.as_deref(),
                before: before.as_deref(),
                newest_first: true,
                limit,
            },
        )
        .await?;
    let detail = detail(&call)?;
    let next = (companies.len() as u64 == u64::from(limit))
        .then(|| companies.last().map(|c| c.id.clone()))
        .flatten();
    let views: Vec<Value> = companies.iter().map(|c| view::company(c, detail)).collect();
    Ok(
        axum::Json(json!({"companies": views, "cursor": {"limit": limit, "before": next}}))
            .into_response(),
    )
}

/// The company a webhook body names by `uid` (or `id`) gets the other keys as properties.
async fn write_company(
    state: &AppState,
    ws: WorkspaceId,
    body: Map<String, Value>,
) -> Result<CompanyRecord, ChameleonError> {
    let mut body = names::normalize_object(body);
    body.remove("account_secret");
    let uid = text_param(&body, "uid")?;
    let id = text_param(&body, "id")?;
    body.remove("uid");
    body.remove("id");
    let uid = match (uid, id) {
        (Some(uid), _) => uid,
        (None, Some(id)) => state.service.company(ws, &id).await?.uid,
        (None, None) => {
            return Err(Violation::new("/uid", "send the company's `uid` or `id`").into());
        }
    };
    let company = CompanyUpsert::new(&uid, body, "/uid")?;
    Ok(state.service.upsert_company(ws, &company).await?.0)
}

/// `POST /v3/observe/hooks/companies` (the secret maybe in the path).
pub async fn hook(
    State(state): State<AppState>,
    secret: Option<Path<String>>,
    call: Call,
) -> Reply {
    let secret = secret.map(|Path(s)| s);
    let ws = call.caller(&state, secret.as_deref()).await?.write()?;
    let company = write_company(&state, ws, call.params).await?;
    Ok((
        StatusCode::OK,
        axum::Json(json!({"company": {"id": company.id}})),
    )
        .into_response())
}
