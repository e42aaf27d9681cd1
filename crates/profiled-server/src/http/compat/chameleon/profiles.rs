//! User profiles: retrieve, search and count (`/v3/analyze`), the profile webhook
//! (`/v3/observe/hooks`), clear and forget (`/v3/edit`).

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use profiled_core::filter::{CompareOp, Field, Filter, Literal};
use profiled_core::import::{ImportCounts, ImportFailure};
use profiled_core::ops::PropertyOps;
use profiled_core::{Identity, Profile, ProfileId, Violation, WorkspaceId};
use profiled_store::CompanyRecord;
use serde_json::{Map, Value, json};

use super::view::{self, CompanyDetail, ProfileDetail};
use super::{
    Call, ChameleonError, authenticate, body_bytes, filters, header_secret, id_bound, limit_param,
    names, params, text_param,
};
use crate::http::AppState;
use crate::http::extract::{Caller, OriginTag};
use crate::service::search::{Search, sort_keys};
use crate::service::{
    Change, CompanyLink, CompanyUpsert, ServiceError, Upsert, WriteContext, Written,
};

type Reply = Result<Response, ChameleonError>;

fn json(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `expand: {profile: all|min, company: all|min|skip}`, with these defaults.
pub(super) fn expand(
    params: &Map<String, Value>,
    profile: ProfileDetail,
    company: CompanyDetail,
) -> Result<(ProfileDetail, CompanyDetail), ChameleonError> {
    let Some(expand) = params.get("expand") else {
        return Ok((profile, company));
    };
    let Some(expand) = expand.as_object() else {
        return Err(Violation::new("/expand", "`expand` is an object: {profile, company}").into());
    };
    let profile = match expand.get("profile").and_then(Value::as_str) {
        None => profile,
        Some("all") => ProfileDetail::All,
        Some("min") => ProfileDetail::Min,
        Some(_) => return Err(Violation::new("/expand/profile", "`all` or `min`").into()),
    };
    let company = match expand.get("company").and_then(Value::as_str) {
        None => company,
        Some("all") => CompanyDetail::All,
        Some("min") => CompanyDetail::Min,
        Some("skip") => CompanyDetail::Skip,
        Some(_) => return Err(Violation::new("/expand/company", "`all`, `min` or `skip`").into()),
    };
    Ok((profile, company))
}

fn identity(state: &AppState, kind: &str, value: &str) -> Result<Identity, ChameleonError> {
    Identity::parse(kind, value, state.service.limits())
        .map_err(|m| Violation::new(format!("/{kind}"), m).into())
}

/// The profile `id`, `uid` or `email` names (the first of them given).
async fn find(
    state: &AppState,
    ws: WorkspaceId,
    params: &Map<String, Value>,
) -> Result<Profile, ChameleonError> {
    if let Some(id) = text_param(params, "id")? {
        return Ok(state.service.profile(ws, &ProfileId(id)).await?);
    }
    for kind in ["uid", "email"] {
        if let Some(value) = text_param(params, kind)? {
            let identity = identity(state, kind, &value)?;
            return Ok(state.service.profile_by_identity(ws, &identity).await?);
        }
    }
    Err(ChameleonError::unprocessable(
        "send one of `id`, `uid` or `email`",
    ))
}

/// The company a view embeds, when it asks for one and the profile has one.
async fn company_of(
    state: &AppState,
    ws: WorkspaceId,
    profile: &Profile,
    detail: CompanyDetail,
) -> Result<Option<CompanyRecord>, ChameleonError> {
    match (&profile.company, detail) {
        (None, _) | (_, CompanyDetail::Skip) => Ok(None),
        (Some(id), _) => match state.service.company(ws, id).await {
            Ok(company) => Ok(Some(company)),
            Err(ServiceError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}

async fn show_one(state: &AppState, call: &Call, ws: WorkspaceId, profile: Profile) -> Reply {
    let (detail, company_detail) = expand(&call.params, ProfileDetail::All, CompanyDetail::All)?;
    let company = company_of(state, ws, &profile, company_detail).await?;
    let view = view::profile(
        &profile,
        detail,
        company.as_ref().map(|c| (c, company_detail)),
    );
    Ok(json(StatusCode::OK, json!({ "profile": view })))
}

/// `GET|POST /v3/analyze/profiles/:id`
pub async fn show(State(state): State<AppState>, Path(id): Path<String>, call: Call) -> Reply {
    let ws = call.caller(&state, None).await?.read()?;
    let profile = state.service.profile(ws, &ProfileId(id)).await?;
    show_one(&state, &call, ws, profile).await
}

/// `GET|POST /v3/analyze/profile` with `id`, `uid` or `email`.
pub async fn lookup(State(state): State<AppState>, call: Call) -> Reply {
    let ws = call.caller(&state, None).await?.read()?;
    let profile = find(&state, ws, &call.params).await?;
    show_one(&state, &call, ws, profile).await
}

/// The profiles `filters`, `filters_op`, `segment_id`, `before` and `after` choose.
async fn chosen(
    state: &AppState,
    ws: WorkspaceId,
    params: &Map<String, Value>,
) -> Result<Filter, ChameleonError> {
    let mut terms = vec![filters::compile(
        params.get("filters"),
        params.get("filters_op"),
    )?];
    if let Some(key) = text_param(params, "segment_id")? {
        state.service.segment(ws, &key).await?;
        terms.push(Filter::Contains {
            field: Field::Segments,
            value: Literal::String(key),
        });
    }
    for (key, op) in [("before", CompareOp::Lt), ("after", CompareOp::Gt)] {
        if let Some(bound) = id_bound(params, key)? {
            terms.push(Filter::Compare {
                field: Field::Id,
                op,
                value: Literal::String(bound),
            });
        }
    }
    Ok(Filter::And(terms))
}

/// `GET|POST /v3/analyze/profiles`: newest first; `cursor.before` continues.
pub async fn search(State(state): State<AppState>, call: Call) -> Reply {
    let ws = call.caller(&state, None).await?.read()?;
    let filter = chosen(&state, ws, &call.params).await?;
    let limit = limit_param(&call.params)?;
    let (detail, company_detail) = expand(&call.params, ProfileDetail::All, CompanyDetail::Skip)?;
    let page = state
        .service
        .search(
            ws,
            Search {
                filter,
                sort: sort_keys(vec![("id".into(), true)])?,
                limit,
                cursor: None,
            },
        )
        .await?;
    let mut companies: Vec<CompanyRecord> = Vec::new();
    let mut views = Vec::with_capacity(page.profiles.len());
    for profile in &page.profiles {
        let known = profile
            .company
            .as_ref()
            .and_then(|id| companies.iter().position(|c| &c.id == id));
        let company = match known {
            Some(i) => Some(i),
            None => company_of(&state, ws, profile, company_detail)
                .await?
                .map(|c| {
                    companies.push(c);
                    companies.len() - 1
                }),
        };
        views.push(view::profile(
            profile,
            detail,
            company.map(|i| (&companies[i], company_detail)),
        ));
    }
    let before = page
        .next_cursor
        .is_some()
        .then(|| page.profiles.last().map(|p| p.id.0.clone()))
        .flatten();
    Ok(json(
        StatusCode::OK,
        json!({"profiles": views, "cursor": {"limit": limit, "before": before}}),
    ))
}

/// `GET|POST /v3/analyze/profiles/count`
pub async fn count(State(state): State<AppState>, call: Call) -> Reply {
    let ws = call.caller(&state, None).await?.read()?;
    let filter = chosen(&state, ws, &call.params).await?;
    let count = state.service.count(ws, &filter).await?;
    Ok(json(StatusCode::OK, json!({ "count": count })))
}

/// The company a webhook body names: `company: {uid, ...properties}`, `company_uid` or
/// `company_id` (taken out of the body).
async fn company_link(
    state: &AppState,
    ws: WorkspaceId,
    body: &mut Map<String, Value>,
) -> Result<Option<CompanyLink>, ChameleonError> {
    let company_uid = text_param(body, "company_uid")?;
    let company_id = text_param(body, "company_id")?;
    body.remove("company_uid");
    body.remove("company_id");
    let (uid, id, properties) = match body.remove("company") {
        Some(Value::Object(mut company)) => {
            let uid = text_param(&company, "uid")?.or(company_uid);
            let id = text_param(&company, "id")?.or(company_id);
            company.remove("uid");
            company.remove("id");
            (uid, id, company)
        }
        None | Some(Value::Null) => (company_uid, company_id, Map::new()),
        Some(_) => {
            return Err(Violation::new("/company", "`company` is an object with a `uid`").into());
        }
    };
    let uid = match (uid, id) {
        (Some(uid), _) => uid,
        (None, Some(id)) => match state.service.company(ws, &id).await {
            Ok(company) => company.uid,
            Err(ServiceError::NotFound(_)) => {
                return Err(
                    Violation::new("/company_id", format!("no company has the id `{id}`")).into(),
                );
            }
            Err(e) => return Err(e.into()),
        },
        (None, None) if properties.is_empty() => return Ok(None),
        (None, None) => {
            return Err(Violation::new("/company/uid", "name the company by `uid`").into());
        }
    };
    Ok(Some(CompanyLink::Join(CompanyUpsert::new(
        &uid,
        properties,
        "/company_uid",
    )?)))
}

/// Whether any of the identities leads to a profile.
async fn exists(
    state: &AppState,
    ws: WorkspaceId,
    identities: &[Identity],
) -> Result<bool, ChameleonError> {
    for identity in identities {
        match state.service.profile_by_identity(ws, identity).await {
            Ok(_) => return Ok(true),
            Err(ServiceError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(false)
}

/// Applies one webhook body: the profile its `uid`, `email` or `id` names gets the other keys
/// as properties (names normalised, strings cut). With `create` false, a profile that does not
/// exist yet is left alone (`None`).
async fn write_profile(
    state: &AppState,
    ws: WorkspaceId,
    ctx: &WriteContext,
    body: Map<String, Value>,
    create: bool,
) -> Result<Option<Written>, ChameleonError> {
    let mut body = names::normalize_object(body);
    body.remove("account_secret");
    let id = text_param(&body, "id")?;
    let uid = text_param(&body, "uid")?;
    let email = text_param(&body, "email")?;
    body.remove("id");
    body.remove("uid");
    let company = company_link(state, ws, &mut body).await?;
    let mut identities = Vec::new();
    if let Some(uid) = &uid {
        identities.push(identity(state, "uid", uid)?);
    }
    if let Some(email) = &email {
        identities.push(identity(state, "email", email)?);
    }
    if let Some(id) = id {
        let profile = state.service.profile(ws, &ProfileId(id.clone())).await?;
        for known in profile.identities {
            if !identities.contains(&known) {
                identities.push(known);
            }
        }
        if identities.is_empty() {
            return Err(ChameleonError::unprocessable(format!(
                "profile `{id}` has no uid or email to update it by; send one"
            )));
        }
    } else if identities.is_empty() {
        return Err(ChameleonError::unprocessable(
            "send a `uid`, an `email` or an `id`",
        ));
    }
    if !create && !exists(state, ws, &identities).await? {
        return Ok(None);
    }
    let upsert = Upsert {
        identities,
        change: Change::Ops(PropertyOps {
            set: body,
            ..PropertyOps::default()
        }),
        company,
        seen: None,
    };
    Ok(Some(state.service.upsert(ws, ctx, upsert).await?))
}

fn writer(caller: &Caller) -> Result<(WorkspaceId, WriteContext), ChameleonError> {
    Ok((caller.write()?, caller.context(OriginTag(None))))
}

/// `POST /v3/observe/hooks/profiles` (the secret maybe in the path): create or update a
/// profile, synchronously.
pub async fn hook(
    State(state): State<AppState>,
    secret: Option<Path<String>>,
    call: Call,
) -> Reply {
    let secret = secret.map(|Path(s)| s);
    let caller = call.caller(&state, secret.as_deref()).await?;
    let (ws, ctx) = writer(&caller)?;
    let written = write_profile(&state, ws, &ctx, call.params, true)
        .await?
        .ok_or_else(|| ChameleonError::new(StatusCode::NOT_FOUND, "no such profile"))?;
    Ok(json(
        StatusCode::OK,
        json!({"profile": {"id": written.profile.id}}),
    ))
}

/// `POST /v3/observe/hooks/profiles/batch`: `{profiles: [...], on_model_missing}` → 202 with
/// the batch's id (a completed import job) and the items that failed.
pub async fn hook_batch(
    State(state): State<AppState>,
    secret: Option<Path<String>>,
    mut call: Call,
) -> Reply {
    let secret = secret.map(|Path(s)| s);
    let caller = call.caller(&state, secret.as_deref()).await?;
    let (ws, ctx) = writer(&caller)?;
    let started = Timestamp::now();
    let create = match call.params.get("on_model_missing") {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) if s == "create" => true,
        Some(Value::String(s)) if s == "ignore" => false,
        Some(_) => return Err(Violation::new("/on_model_missing", "`create` or `ignore`").into()),
    };
    let Some(Value::Array(profiles)) = call.params.remove("profiles") else {
        return Err(Violation::new("/profiles", "send `profiles`, an array of profiles").into());
    };
    let mut counts = ImportCounts::default();
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in profiles.into_iter().enumerate() {
        counts.read += 1;
        let outcome = match item {
            Value::Object(body) => write_profile(&state, ws, &ctx, body, create).await,
            _ => Err(ChameleonError::unprocessable("a profile is a JSON object")),
        };
        match outcome {
            Ok(Some(w)) if w.created => counts.created += 1,
            Ok(Some(w)) if w.changed => counts.updated += 1,
            Ok(Some(_)) => counts.unchanged += 1,
            Ok(None) => counts.skipped += 1,
            // A storage failure stops the batch; what was applied stays (re-sending it is safe).
            Err(e) if e.status().is_server_error() => return Err(e),
            Err(e) => {
                counts.failed += 1;
                failures.push(ImportFailure {
                    line: index as u64 + 1,
                    reason: e.message(),
                });
                errors.push(
                    json!({"code": e.status().as_u16(), "index": index, "message": e.message()}),
                );
            }
        }
    }
    let record = state
        .service
        .record_batch(ws, &ctx, "chameleon", started, counts, failures)
        .await?;
    let mut body = json!({"batch": {"id": record.id}});
    if !errors.is_empty() {
        body["errors"] = Value::Array(errors);
    }
    Ok(json(StatusCode::ACCEPTED, body))
}

async fn clear_profile(state: &AppState, caller: &Caller, id: &ProfileId) -> Reply {
    let (ws, ctx) = writer(caller)?;
    let profile = state.service.clear(ws, &ctx, id, None).await?;
    // A write-only key never reads profile data.
    let view = if caller.scope.can_read() {
        let company = company_of(state, ws, &profile, CompanyDetail::Skip).await?;
        view::profile(
            &profile,
            ProfileDetail::All,
            company.as_ref().map(|c| (c, CompanyDetail::Skip)),
        )
    } else {
        json!({"id": profile.id})
    };
    Ok(json(StatusCode::OK, json!({ "profile": view })))
}

/// `DELETE /v3/edit/profiles?uid=` (or `id`, `email`): clears the profile.
pub async fn clear(State(state): State<AppState>, call: Call) -> Reply {
    let caller = call.caller(&state, None).await?;
    let ws = caller.write()?;
    let profile = find(&state, ws, &call.params).await?;
    clear_profile(&state, &caller, &profile.id).await
}

/// `DELETE /v3/edit/profiles/:id`
pub async fn clear_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: Call,
) -> Reply {
    let caller = call.caller(&state, None).await?;
    clear_profile(&state, &caller, &ProfileId(id)).await
}

async fn forget_profile(state: &AppState, caller: &Caller, id: &ProfileId) -> Reply {
    let (ws, ctx) = writer(caller)?;
    let receipt = state.service.forget(ws, &ctx, id, None).await?;
    Ok(json(
        StatusCode::OK,
        json!({"profile": {"id": receipt.profile_id}, "deletion": {"id": receipt.id}}),
    ))
}

/// `DELETE /v3/edit/profiles/forget?uid=|email=|id=`: erases the profile; the deletion is
/// the native deletion receipt.
pub async fn forget(State(state): State<AppState>, call: Call) -> Reply {
    let caller = call.caller(&state, None).await?;
    let ws = caller.write()?;
    let profile = find(&state, ws, &call.params).await?;
    forget_profile(&state, &caller, &profile.id).await
}

/// `DELETE /v3/edit/profiles/:id/forget`
pub async fn forget_by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
    call: Call,
) -> Reply {
    let caller = call.caller(&state, None).await?;
    forget_profile(&state, &caller, &ProfileId(id)).await
}

/// `POST /v3/edit/profiles/forget/batch`: a CSV whose header names a `uid` column, an `email`
/// column or both; each row is one person to erase (by uid when it has one).
pub async fn forget_batch(State(state): State<AppState>, req: Request) -> Reply {
    let query = params::query_object(req.uri().query())
        .map_err(|m| ChameleonError::new(StatusCode::BAD_REQUEST, m))?;
    let secret = header_secret(req.headers()).or_else(|| {
        query
            .get("account_secret")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let bytes = body_bytes(req, &state).await?;
    let caller = match secret {
        Some(secret) => authenticate(&state, &secret).await?,
        None => {
            return Err(ChameleonError::new(
                StatusCode::FORBIDDEN,
                "send the account secret as `X-Account-Secret` or `account_secret`",
            ));
        }
    };
    let (ws, ctx) = writer(&caller)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(&bytes[..]);
    let header = reader
        .headers()
        .map_err(|e| ChameleonError::unprocessable(format!("the CSV could not be read: {e}")))?
        .clone();
    let column = |name: &str| header.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (uid_column, email_column) = (column("uid"), column("email"));
    if uid_column.is_none() && email_column.is_none() {
        return Err(ChameleonError::unprocessable(
            "the first line names the columns: `uid`, `email` or both",
        ));
    }
    let mut identities = Vec::new();
    let mut errors = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let found = row
            .map_err(|e| ChameleonError::unprocessable(format!("the row could not be read: {e}")))
            .and_then(|row| {
                let cell = |c: Option<usize>| {
                    c.and_then(|c| row.get(c))
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                match (cell(uid_column), cell(email_column)) {
                    (Some(uid), _) => identity(&state, "uid", &uid),
                    (None, Some(email)) => identity(&state, "email", &email),
                    (None, None) => Err(ChameleonError::unprocessable(
                        "the row has neither a uid nor an email",
                    )),
                }
            });
        match found {
            Ok(identity) => identities.push(identity),
            Err(e) => errors.push(json!({"code": 422, "index": index, "message": e.message()})),
        }
    }
    let (receipts, not_found) = state
        .service
        .forget_identities(ws, &ctx, &identities)
        .await?;
    let deletions: Vec<Value> = receipts
        .iter()
        .map(|r| json!({"id": r.id, "profile": {"id": r.profile_id}}))
        .collect();
    Ok(json(
        StatusCode::OK,
        json!({"deletions": deletions, "not_found": not_found, "errors": errors}),
    ))
}
