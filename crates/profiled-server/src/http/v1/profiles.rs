//! `/v1/profiles`: upsert by identities, read, change, identities. (Deleting is forgetting:
//! see `deletions.rs`.)

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use profiled_core::error::pointer_token;
use profiled_core::identity::IdentityMap;
use profiled_core::{
    Identity, Profile, ProfileId, PropertyOps, RawProfile, StoredObject, Violation,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::companies::CompanyView;
use crate::http::AppState;
use crate::http::extract::{ApiJson, Caller, IfMatch, OriginTag, PatchBody, from_value_at};
use crate::http::problem::{ApiError, Problem};
use crate::service::{Change, CompanyLink, CompanyUpsert, Upsert};

/// A profile as the native API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    /// Server-assigned, stable id.
    pub id: String,
    pub identities: Vec<Identity>,
    /// Set by clients.
    #[schema(value_type = Object)]
    pub properties: StoredObject,
    /// Derived by the service; `percent` is a stable random number in [0, 100).
    #[schema(value_type = Object, example = json!({"percent": 42.5, "session_count": 3, "last_seen_at": "2026-11-22T10:00:00.000000Z"}))]
    pub computed: StoredObject,
    /// Where the end user was last seen (from the newest event's IP): `country`,
    /// `country_name`, `region`, `region_code`, `city`, `postal_code`, `latitude`,
    /// `longitude`, `time_zone`.
    #[schema(value_type = Object, example = json!({"country": "DE", "city": "Berlin", "time_zone": "Europe/Berlin"}))]
    pub location: StoredObject,
    /// The end user's last device (from the newest event's user agent): `browser`,
    /// `browser_version`, `os`, `os_version`, `vendor`, `type`, `bot`.
    #[schema(value_type = Object, example = json!({"browser": "Chrome", "os": "Windows 10", "type": "desktop", "bot": false}))]
    pub device: StoredObject,
    /// The id of the company the profile belongs to.
    pub company_id: Option<String>,
    /// The company itself, with `?expand=company`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub company: Option<super::companies::CompanyView>,
    /// Keys of the segments the profile is a member of.
    #[schema(example = json!(["paying"]))]
    pub segments: Vec<String>,
    /// RFC 3339, UTC.
    #[schema(example = "2026-11-22T15:56:28.123456Z")]
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// Increments on every change; also the `ETag`.
    pub version: i64,
}

impl From<Profile> for ProfileView {
    fn from(p: Profile) -> Self {
        RawProfile::from(p).into()
    }
}

impl From<RawProfile> for ProfileView {
    fn from(p: RawProfile) -> Self {
        Self {
            id: p.id.0,
            identities: p.identities,
            properties: p.properties,
            computed: p.computed,
            location: p.location,
            device: p.device,
            company_id: p.company,
            company: None,
            segments: p.segments,
            created_at: p.created_at.to_string(),
            updated_at: p.updated_at.to_string(),
            version: p.version,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetParams {
    /// Rebuild the profile as it was at this time (RFC 3339) from its change log.
    pub as_of: Option<String>,
    /// `company` embeds the profile's company.
    pub expand: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpandParams {
    /// `company` embeds the profile's company.
    pub expand: Option<String>,
}

/// Whether `?expand=` asks for the company (the only expandable part).
fn expands_company(expand: Option<&str>) -> Result<bool, ApiError> {
    let mut company = false;
    for part in expand.unwrap_or_default().split(',').map(str::trim) {
        match part {
            "" => {}
            "company" => company = true,
            other => {
                return Err(ApiError::invalid(
                    "/expand",
                    format!("`{other}` cannot be expanded; `company` can"),
                ));
            }
        }
    }
    Ok(company)
}

/// The response to a read: [`written`], with the company embedded when asked for.
async fn read(
    state: &AppState,
    caller: &Caller,
    profile: RawProfile,
    expand: Option<&str>,
) -> Result<Response, ApiError> {
    let company = match (&profile.company, expands_company(expand)?) {
        (Some(id), true) => Some(state.service.company(caller.read()?, id).await?),
        _ => None,
    };
    Ok(respond(caller, StatusCode::OK, profile, company))
}

/// What a write-only key gets back instead of the profile: it may write, never read.
#[derive(Debug, Serialize, ToSchema)]
pub struct WriteReceipt {
    pub id: String,
    pub version: i64,
}

/// Create or update a profile by its identities: `identities` beside the operations.
#[derive(Debug, ToSchema)]
pub struct UpsertBody {
    /// One or more identities, `{kind: value}`. The profile that carries any of them is
    /// updated; if none does, a profile is created.
    pub identities: IdentityMap,
    #[schema(inline)]
    #[serde(flatten)]
    pub ops: PropertyOps,
    /// The company the profile belongs to, by uid (created when new; `properties` are merged
    /// into it), or `null` for none. Absent: unchanged.
    #[schema(value_type = Option<CompanyBody>)]
    pub company: Option<Option<CompanyBody>>,
}

/// A company named in a profile upsert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyBody {
    #[schema(example = "acme")]
    pub uid: String,
    /// Merged into the company's properties (`null` removes a key).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
}

impl UpsertBody {
    /// Splits the body into identities and operations, refusing any other key (a mistyped
    /// operation must not be ignored silently).
    fn from_body(mut body: Map<String, Value>) -> Result<Self, ApiError> {
        let unknown: Vec<Violation> = body
            .keys()
            .filter(|k| {
                !matches!(k.as_str(), "identities" | "company")
                    && !PropertyOps::NAMES.contains(&k.as_str())
            })
            .map(|k| {
                Violation::new(
                    format!("/{}", pointer_token(k)),
                    format!(
                        "unknown field; expected `identities`, `company` or an operation: {}",
                        PropertyOps::NAMES.join(", ")
                    ),
                )
            })
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::Invalid(unknown));
        }
        let identities = body.remove("identities").ok_or_else(|| {
            ApiError::invalid(
                "/identities",
                "name at least one identity, e.g. {\"user_id\": \"u1\"}",
            )
        })?;
        let company = match body.remove("company") {
            None => None,
            Some(Value::Null) => Some(None),
            Some(company) => Some(Some(from_value_at(company, "/company")?)),
        };
        Ok(Self {
            identities: from_value_at(identities, "/identities")?,
            ops: ops_of(body)?,
            company,
        })
    }
}

/// The operations of an upsert body with nothing else left in it. Each object is moved
/// into place as it is (deserialising it again rebuilt every map: docs/benchmarks.md,
/// session 15); a value of another shape goes through serde, for serde's own error.
fn ops_of(body: Map<String, Value>) -> Result<PropertyOps, ApiError> {
    let mut ops = PropertyOps::default();
    for (name, value) in body {
        let slot = match name.as_str() {
            "set" => &mut ops.set,
            "set_once" => &mut ops.set_once,
            "increment" => &mut ops.increment,
            "append" => &mut ops.append,
            "remove" => &mut ops.remove,
            "unset" => {
                ops.unset = from_value_at(value, "/unset")?;
                continue;
            }
            // `from_body` refused every other key already.
            other => {
                return Err(ApiError::invalid(
                    &format!("/{}", pointer_token(other)),
                    "unknown operation",
                ));
            }
        };
        *slot = match value {
            Value::Object(map) => map,
            other => from_value_at(other, &format!("/{}", pointer_token(&name)))?,
        };
    }
    Ok(ops)
}

/// Identities to attach to a profile.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesBody {
    pub identities: IdentityMap,
}

/// The response to a write: the profile with its ETag, or a receipt for write-only keys.
fn written(caller: &Caller, status: StatusCode, profile: Profile) -> Response {
    respond(caller, status, profile.into(), None)
}

fn respond(
    caller: &Caller,
    status: StatusCode,
    profile: RawProfile,
    company: Option<profiled_store::CompanyRecord>,
) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", profile.version))
        .expect("digits are a valid header");
    // Only a created profile has a new location to tell.
    let location = (status == StatusCode::CREATED).then(|| {
        HeaderValue::from_str(&format!("/v1/profiles/{}", profile.id)).expect("ids are header-safe")
    });
    let mut response = if caller.scope.can_read() {
        let company = company.map(CompanyView::from);
        super::profile_json::response(
            status,
            super::profile_json::profile(&profile, company.as_ref()),
        )
    } else {
        let receipt = WriteReceipt {
            id: profile.id.0,
            version: profile.version,
        };
        (status, axum::Json(receipt)).into_response()
    };
    response.headers_mut().insert(header::ETAG, etag);
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

fn parse_identity(kind: &str, value: &str, state: &AppState) -> Result<Identity, ApiError> {
    Identity::parse(kind, value, state.service.limits())
        .map_err(|message| ApiError::invalid("/identity", message))
}

#[utoipa::path(
    post, path = "/v1/profiles", tag = "profiles",
    request_body = UpsertBody,
    responses(
        (status = 201, description = "Created", body = ProfileView),
        (status = 200, description = "Updated (a write-only key gets a `WriteReceipt`)", body = ProfileView),
        (status = 409, description = "The identities belong to different profiles", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid identities or operations", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Upsert a profile by identities.
///
/// Applies the operations (`set`, `set_once`, `unset`, `increment`, `append`, `remove`, in
/// that order) to the profile that carries any of the identities, attaching the ones it does
/// not carry yet; creates the profile if none does.
pub async fn upsert(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let body = UpsertBody::from_body(body)?;
    let identities = body
        .identities
        .parse("/identities", state.service.limits())?;
    let company = match body.company {
        None => None,
        Some(None) => Some(CompanyLink::Leave),
        Some(Some(c)) => Some(CompanyLink::Join(CompanyUpsert::new(
            &c.uid,
            c.properties,
            "/company/uid",
        )?)),
    };
    let result = state
        .service
        .upsert(
            ws,
            &caller.context(origin),
            Upsert {
                identities,
                change: Change::Ops(body.ops),
                company,
                seen: None,
            },
        )
        .await?;
    let status = if result.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(written(&caller, status, result.profile))
}

#[utoipa::path(
    get, path = "/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path, description = "Profile id"), GetParams),
    responses(
        (status = 200, body = ProfileView, headers(("ETag" = String, description = "The profile's version"))),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Get a profile by id.
pub async fn get_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<GetParams>,
) -> Result<Response, ApiError> {
    let ws = caller.read()?;
    let requested = ProfileId(id.clone());
    let profile = match params.as_of {
        None => state.service.profile_raw(ws, &requested).await?,
        Some(text) => {
            let at = text.parse::<jiff::Timestamp>().map_err(|_| {
                ApiError::invalid(
                    "/as_of",
                    "as_of is an RFC 3339 timestamp, e.g. 2026-01-02T03:04:05Z",
                )
            })?;
            state
                .service
                .profile_as_of(ws, &ProfileId(id), at)
                .await?
                .into()
        }
    };
    // An id merged into another answers with the survivor, and says where it lives now.
    let moved = (profile.id != requested).then(|| profile.id.clone());
    let mut response = read(&state, &caller, profile, params.expand.as_deref()).await?;
    if let Some(survivor) = moved {
        let location = HeaderValue::from_str(&format!("/v1/profiles/{survivor}"))
            .expect("ids are header-safe");
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, location);
    }
    Ok(response)
}

#[utoipa::path(
    get, path = "/v1/profiles/by/{kind}/{value}", tag = "profiles",
    params(
        ("kind" = String, Path, description = "Identity kind, e.g. `user_id`, `email`"),
        ("value" = String, Path, description = "Identity value (URL-encoded)"),
        ExpandParams,
    ),
    responses(
        (status = 200, body = ProfileView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Get a profile by one of its identities.
pub async fn get_by_identity(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, value)): Path<(String, String)>,
    Query(params): Query<ExpandParams>,
) -> Result<Response, ApiError> {
    let ws = caller.read()?;
    let identity = parse_identity(&kind, &value, &state)?;
    let profile = state.service.profile_by_identity_raw(ws, &identity).await?;
    read(&state, &caller, profile, params.expand.as_deref()).await
}

#[utoipa::path(
    patch, path = "/v1/profiles/{id}", tag = "profiles",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header, description = "Only if the profile is at this version")),
    request_body(
        description = "`application/merge-patch+json`: an RFC 7396 merge patch of `properties`. `application/json`: operations.",
        content(
            (Object = "application/merge-patch+json"),
            (PropertyOps = "application/json"),
        )
    ),
    responses(
        (status = 200, body = ProfileView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an old version", body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Change a profile's properties by merge patch or operations.
pub async fn patch_profile(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    PatchBody(change): PatchBody,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let profile = state
        .service
        .change(
            ws,
            &caller.context(origin),
            &ProfileId(id),
            change,
            precondition,
        )
        .await?;
    Ok(written(&caller, StatusCode::OK, profile))
}

#[utoipa::path(
    put, path = "/v1/profiles/{id}/properties", tag = "profiles",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, description = "The complete new properties"),
    responses(
        (status = 200, body = ProfileView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Replace all of a profile's properties.
pub async fn replace_properties(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    ApiJson(properties): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let Value::Object(properties) = properties else {
        return Err(ApiError::invalid("", "properties must be a JSON object"));
    };
    let profile = state
        .service
        .change(
            ws,
            &caller.context(origin),
            &ProfileId(id),
            Change::Replace(properties),
            precondition,
        )
        .await?;
    Ok(written(&caller, StatusCode::OK, profile))
}

#[utoipa::path(
    post, path = "/v1/profiles/{id}/identities", tag = "profiles",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    request_body = IdentitiesBody,
    responses(
        (status = 200, body = ProfileView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An identity belongs to another profile", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Attach identities to a profile.
pub async fn add_identities(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    ApiJson(body): ApiJson<IdentitiesBody>,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let identities = body
        .identities
        .parse("/identities", state.service.limits())?;
    if identities.is_empty() {
        return Err(ApiError::invalid(
            "/identities",
            "name at least one identity",
        ));
    }
    let profile = state
        .service
        .add_identities(
            ws,
            &caller.context(origin),
            &ProfileId(id),
            identities,
            precondition,
        )
        .await?;
    Ok(written(&caller, StatusCode::OK, profile))
}

#[utoipa::path(
    delete, path = "/v1/profiles/{id}/identities/{kind}/{value}", tag = "profiles",
    params(("id" = String, Path), ("kind" = String, Path), ("value" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = ProfileView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Detach an identity from a profile.
pub async fn remove_identity(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path((id, kind, value)): Path<(String, String, String)>,
    IfMatch(precondition): IfMatch,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let identity = parse_identity(&kind, &value, &state)?;
    let profile = state
        .service
        .remove_identity(
            ws,
            &caller.context(origin),
            &ProfileId(id),
            &identity,
            precondition,
        )
        .await?;
    Ok(written(&caller, StatusCode::OK, profile))
}

#[utoipa::path(
    post, path = "/v1/profiles/{id}/clear", tag = "profiles",
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses(
        (status = 200, body = ProfileView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
/// Clear a profile.
///
/// Empties its properties and computed values, draws a new `computed.percent` and sets
/// `computed.cleared_at`; the profile keeps its id and identities. The change log records a
/// `clear` with the values it removed.
pub async fn clear(
    State(state): State<AppState>,
    caller: Caller,
    origin: OriginTag,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
) -> Result<Response, ApiError> {
    let ws = caller.write()?;
    let profile = state
        .service
        .clear(ws, &caller.context(origin), &ProfileId(id), precondition)
        .await?;
    Ok(written(&caller, StatusCode::OK, profile))
}
