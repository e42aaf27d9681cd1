//! The user point API: a user point's UserProfiles, by selector, read, replaced and deleted;
//! and the datamart's compartments.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use profiled_core::{Identity, Profile, ProfileId, WorkspaceId};
use serde_json::{Map, Value, json};

use super::user_profiles::{self, Slot, Strategy};
use super::{Datamart, MicsError, ok, ok_list};
use crate::http::AppState;
use crate::http::extract::OriginTag;
use crate::service::compat_settings::MediarithmicsSettings;
use crate::service::{Change, ServiceError, Upsert};

type Reply = Result<Response, MicsError>;

/// `GET /v1/datamarts/{dm}/user_account_compartments`
pub async fn compartments(State(state): State<AppState>, dm: Datamart) -> Reply {
    let ws = dm.read()?;
    let settings = state.service.mediarithmics_settings(ws).await?;
    let items = settings
        .compartments
        .iter()
        .map(|c| json!({"id": c.id.to_string(), "token": c.token, "default": c.default, "name": c.name, "datamart_id": dm.name}))
        .collect();
    Ok(ok_list(items))
}

/// Which user point a selector names.
enum UserPoint {
    Id(ProfileId),
    Identified(Identity),
}

/// `<id>`, `user_point_id=`, `user_agent_id=`, `email_hash=` or
/// `compartment_id=C,user_account_id=U`.
fn user_point(
    state: &AppState,
    settings: &MediarithmicsSettings,
    selector: &str,
) -> Result<UserPoint, MicsError> {
    if !selector.contains('=') {
        return Ok(UserPoint::Id(ProfileId(selector.to_owned())));
    }
    let mut pairs = Map::new();
    for part in selector.split(',') {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| MicsError::bad(format!("`{part}` is not `key=value`")))?;
        pairs.insert(
            key.trim().to_owned(),
            Value::String(value.trim().to_owned()),
        );
    }
    let text = |key: &str| {
        pairs
            .get(key)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let limits = state.service.limits();
    let parse = |kind: &str, value: &str| {
        Identity::parse(kind, value, limits).map_err(|m| MicsError::bad(format!("{selector}: {m}")))
    };
    let one = |key: &str| pairs.len() == 1 && text(key).is_some();
    if one("user_point_id") {
        Ok(UserPoint::Id(ProfileId(
            text("user_point_id").expect("checked").to_owned(),
        )))
    } else if one("user_agent_id") {
        Ok(UserPoint::Identified(parse(
            "user_agent_id",
            text("user_agent_id").expect("checked"),
        )?))
    } else if one("email_hash") {
        Ok(UserPoint::Identified(parse(
            "email_hash",
            text("email_hash").expect("checked"),
        )?))
    } else if let (2, Some(c), Some(u)) =
        (pairs.len(), text("compartment_id"), text("user_account_id"))
    {
        let compartment = c
            .parse::<i64>()
            .ok()
            .filter(|c| settings.has_compartment(*c))
            .ok_or_else(|| {
                MicsError::new(
                    StatusCode::NOT_FOUND,
                    format!("no compartment `{c}` in this datamart"),
                )
            })?;
        Ok(UserPoint::Identified(parse(
            &format!("account:{compartment}"),
            u,
        )?))
    } else {
        Err(MicsError::bad(format!(
            "`{selector}` is not a user point selector: use <id>, user_point_id=, user_agent_id=, email_hash= or compartment_id=C,user_account_id=U"
        )))
    }
}

/// The UserProfile the path's `compartment_id=C` and `user_account_id=U` segments name.
fn path_slot(
    settings: &MediarithmicsSettings,
    compartment: Option<&str>,
    account: Option<&str>,
) -> Result<Option<Slot>, MicsError> {
    let Some(compartment) = compartment else {
        return Ok(None);
    };
    let id = compartment
        .strip_prefix("compartment_id=")
        .and_then(|c| c.parse::<i64>().ok())
        .ok_or_else(|| {
            MicsError::bad("the segment after user_profiles is `compartment_id=<id>`")
        })?;
    if !settings.has_compartment(id) {
        return Err(MicsError::new(
            StatusCode::NOT_FOUND,
            format!("no compartment `{id}` in this datamart"),
        ));
    }
    let account = match account {
        None => None,
        Some(a) => Some(
            a.strip_prefix("user_account_id=")
                .filter(|a| !a.is_empty())
                .ok_or_else(|| MicsError::bad("the last segment is `user_account_id=<id>`"))?
                .to_owned(),
        ),
    };
    Ok(Some(Slot {
        compartment: id,
        account,
    }))
}

type ProfilePath = Path<Vec<(String, String)>>;

struct Target {
    ws: WorkspaceId,
    settings: MediarithmicsSettings,
    point: UserPoint,
    slot: Option<Slot>,
}

async fn target(
    state: &AppState,
    ws: WorkspaceId,
    Path(params): ProfilePath,
) -> Result<Target, MicsError> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let settings = state.service.mediarithmics_settings(ws).await?;
    let point = user_point(state, &settings, param("selector").unwrap_or_default())?;
    let slot = path_slot(&settings, param("compartment"), param("account"))?;
    Ok(Target {
        ws,
        settings,
        point,
        slot,
    })
}

async fn stored(
    state: &AppState,
    ws: WorkspaceId,
    point: &UserPoint,
) -> Result<Profile, MicsError> {
    Ok(match point {
        UserPoint::Id(id) => state.service.profile(ws, id).await?,
        UserPoint::Identified(identity) => state.service.profile_by_identity(ws, identity).await?,
    })
}

/// `GET .../user_points/{selector}/user_profiles[/compartment_id=C[/user_account_id=U]]`: the
/// list, or the one UserProfile named.
pub async fn get(State(state): State<AppState>, dm: Datamart, path: ProfilePath) -> Reply {
    let ws = dm.read()?;
    let target = target(&state, ws, path).await?;
    let profile = stored(&state, ws, &target.point).await?;
    let found = user_profiles::read(&profile.properties);
    match target.slot {
        None => Ok(ok_list(found.into_iter().map(|(_, v)| v).collect())),
        Some(slot) => found
            .into_iter()
            .find(|(s, _)| *s == slot)
            .map(|(_, v)| ok(v))
            .ok_or_else(|| {
                MicsError::new(
                    StatusCode::NOT_FOUND,
                    "the user point has no such user profile",
                )
            }),
    }
}

/// `PUT` the same paths: the body (a UserProfile) replaces the one the path names, or the
/// one its own `$compartment_id` and `$user_account_id` name. A user point named by an
/// identifier is created when new.
pub async fn put(
    State(state): State<AppState>,
    dm: Datamart,
    path: ProfilePath,
    body: Bytes,
) -> Reply {
    let ws = dm.write()?;
    let target = target(&state, ws, path).await?;
    let body: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(MicsError::bad("the body is a UserProfile: a JSON object")),
        Err(e) => return Err(MicsError::bad(format!("the body is not valid JSON: {e}"))),
    };
    let slot = match target.slot {
        Some(slot) => slot,
        None => {
            Slot::named_by(&body, target.settings.default_compartment()).map_err(MicsError::bad)?
        }
    };
    if !target.settings.has_compartment(slot.compartment) {
        return Err(MicsError::bad(format!(
            "no compartment `{}` in this datamart",
            slot.compartment
        )));
    }
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let change = Change::Ops(user_profiles::upsert_ops(
        &slot,
        Strategy::Replace,
        &body,
        now_ms,
    ));
    let ctx = dm.caller.context(OriginTag(None));
    let profile = match target.point {
        UserPoint::Id(id) => {
            state
                .service
                .change(target.ws, &ctx, &id, change, None)
                .await?
        }
        UserPoint::Identified(identity) => {
            let upsert = Upsert {
                identities: vec![identity],
                change,
                company: None,
                seen: None,
            };
            state.service.upsert(target.ws, &ctx, upsert).await?.profile
        }
    };
    if !dm.caller.scope.can_read() {
        return Ok((StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response());
    }
    let view = user_profiles::read(&profile.properties)
        .into_iter()
        .find(|(s, _)| *s == slot)
        .map(|(_, v)| v)
        .unwrap_or(Value::Null);
    Ok(ok(view))
}

/// `DELETE` the same paths: removes the UserProfile named, or all of them (the user point
/// stays).
pub async fn delete(State(state): State<AppState>, dm: Datamart, path: ProfilePath) -> Reply {
    let ws = dm.write()?;
    let target = target(&state, ws, path).await?;
    let profile = stored(&state, ws, &target.point).await?;
    if let Some(slot) = &target.slot
        && !user_profiles::read(&profile.properties)
            .iter()
            .any(|(s, _)| s == slot)
    {
        return Err(MicsError::new(
            StatusCode::NOT_FOUND,
            "the user point has no such user profile",
        ));
    }
    let change = Change::Ops(user_profiles::delete_ops(target.slot.as_ref()));
    match state
        .service
        .change(
            ws,
            &dm.caller.context(OriginTag(None)),
            &profile.id,
            change,
            None,
        )
        .await
    {
        Ok(_) => Ok((StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()),
        Err(ServiceError::NotFound(_)) => {
            Err(MicsError::new(StatusCode::NOT_FOUND, "no such user point"))
        }
        Err(e) => Err(e.into()),
    }
}
