//! Profiles as JSON snapshots: a merge keeps the profiles as they were, so it can be undone.

use profiled_core::{Identity, Profile, ProfileId};
use serde_json::{Value, json};

use crate::rows::{from_micros, micros};
use crate::{Result, StoreError};

/// A profile as a JSON snapshot (kept for undo).
pub(crate) fn snapshot(p: &Profile) -> Value {
    json!({
        "id": p.id.0,
        "identities": p.identities.iter().map(|i| [i.kind.as_str(), i.value.as_str()]).collect::<Vec<_>>(),
        "properties": p.properties,
        "computed": p.computed,
        "created_at": micros(p.created_at),
        "updated_at": micros(p.updated_at),
        "version": p.version,
        "set_once": p.set_once,
        "location": p.location,
        "device": p.device,
        "activity": p.activity,
        "company_id": p.company,
    })
}

pub(crate) fn restore(value: &Value) -> Result<Profile> {
    let corrupt = || StoreError::Corrupt("a merge snapshot does not decode".into());
    let object = value.as_object().ok_or_else(corrupt)?;
    let text = |key: &str| object.get(key).and_then(Value::as_str).ok_or_else(corrupt);
    let number = |key: &str| object.get(key).and_then(Value::as_i64).ok_or_else(corrupt);
    let map = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(corrupt)
    };
    let identities = object
        .get("identities")
        .and_then(Value::as_array)
        .ok_or_else(corrupt)?
        .iter()
        .map(|pair| match pair.as_array().map(Vec::as_slice) {
            Some([Value::String(kind), Value::String(value)]) => {
                Ok(Identity::new_unchecked(kind, value))
            }
            _ => Err(corrupt()),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Profile {
        id: ProfileId(text("id")?.to_owned()),
        identities,
        properties: map("properties")?,
        computed: map("computed")?,
        created_at: from_micros(number("created_at")?)?,
        updated_at: from_micros(number("updated_at")?)?,
        version: number("version")?,
        set_once: object
            .get("set_once")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
        // Snapshots taken before enrichment existed lack these.
        location: map("location").unwrap_or_default(),
        device: map("device").unwrap_or_default(),
        activity: object
            .get("activity")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default(),
        company: object
            .get("company_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        // Memberships are not part of a snapshot: they follow from the profile when it is
        // written back.
        segments: Default::default(),
    })
}
