//! The change log: every mutation of a profile, from any API, is one entry saying what it
//! touched, before and after. One log serves history, the change feed and audit.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Profile;

/// What a mutation did to a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Update,
    AddIdentities,
    RemoveIdentity,
    /// Other profiles were merged into this one.
    Merge,
    /// A merge was undone: the absorbed profile is back, or the survivor gave back what it took.
    Unmerge,
    /// The profile was reset: properties and computed values emptied, a new `percent` drawn,
    /// identities kept.
    Clear,
    /// The profile was deleted; the entry carries no values, and the profile's earlier entries
    /// are gone with it.
    Delete,
    /// Events changed what the profile's events add up to (`computed`), its location or
    /// device, or attached identities.
    Events,
    /// The profile entered segments (`segments.<key>` after `true`) and left others
    /// (`before` `true`): one entry per profile and write.
    Segments,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::AddIdentities => "add_identities",
            Operation::RemoveIdentity => "remove_identity",
            Operation::Merge => "merge",
            Operation::Unmerge => "unmerge",
            Operation::Clear => "clear",
            Operation::Delete => "delete",
            Operation::Events => "events",
            Operation::Segments => "segments",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Create,
            Self::Update,
            Self::AddIdentities,
            Self::RemoveIdentity,
            Self::Merge,
            Self::Unmerge,
            Self::Clear,
            Self::Delete,
            Self::Events,
            Self::Segments,
        ]
        .into_iter()
        .find(|o| o.as_str() == text)
    }
}

/// One touched key: `properties.<key>`, `computed.<key>` or `identities.<kind>`, with its
/// value before and after (absent when the key did not exist).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyChange {
    #[schema(example = "properties.plan")]
    pub key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// A change about to be logged.
#[derive(Debug, Clone, PartialEq)]
pub struct NewChange {
    pub profile_id: crate::ProfileId,
    pub at: Timestamp,
    /// Who made it: `key:<id>` for an API key.
    pub actor: String,
    pub operation: Operation,
    pub changes: Vec<KeyChange>,
    /// A tag the client set, so that a consumer of the feed can recognise its own writes.
    pub origin: Option<String>,
}

/// A logged change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Increases with every entry of a workspace, in commit order.
    pub seq: i64,
    pub entry: NewChange,
}

/// The keys a mutation touched, from the profile before (none when created) to after.
/// Top-level property and computed keys are compared whole; identities by kind and value.
pub fn diff(before: Option<&Profile>, after: &Profile) -> Vec<KeyChange> {
    let empty = Map::new();
    let mut changes = Vec::new();
    diff_maps(
        "properties",
        before.map_or(&empty, |p| &p.properties),
        &after.properties,
        &mut changes,
    );
    diff_maps(
        "computed",
        before.map_or(&empty, |p| &p.computed),
        &after.computed,
        &mut changes,
    );
    diff_maps(
        "location",
        before.map_or(&empty, |p| &p.location),
        &after.location,
        &mut changes,
    );
    diff_maps(
        "device",
        before.map_or(&empty, |p| &p.device),
        &after.device,
        &mut changes,
    );
    let before_company = before.and_then(|p| p.company.as_ref());
    if before_company != after.company.as_ref() {
        changes.push(KeyChange {
            key: "company_id".into(),
            before: before_company.map(|c| Value::String(c.clone())),
            after: after.company.as_ref().map(|c| Value::String(c.clone())),
        });
    }
    let before_ids = before.map(|p| p.identities.as_slice()).unwrap_or_default();
    for identity in before_ids.iter().filter(|i| !after.identities.contains(i)) {
        changes.push(KeyChange {
            key: format!("identities.{}", identity.kind),
            before: Some(Value::String(identity.value.clone())),
            after: None,
        });
    }
    for identity in after.identities.iter().filter(|i| !before_ids.contains(i)) {
        changes.push(KeyChange {
            key: format!("identities.{}", identity.kind),
            before: None,
            after: Some(Value::String(identity.value.clone())),
        });
    }
    changes
}

/// Reverses one logged change on `profile` (the profile as it was after it): every touched key
/// gets its value from before; the version steps back by one.
pub fn undo(profile: &mut Profile, changes: &[KeyChange]) {
    for change in changes {
        if let Some(key) = change.key.strip_prefix("properties.") {
            restore(&mut profile.properties, key, &change.before);
        } else if let Some(key) = change.key.strip_prefix("computed.") {
            restore(&mut profile.computed, key, &change.before);
        } else if let Some(kind) = change.key.strip_prefix("identities.") {
            if let Some(Value::String(value)) = &change.after {
                profile
                    .identities
                    .retain(|i| !(i.kind.as_str() == kind && &i.value == value));
            }
            if let Some(Value::String(value)) = &change.before {
                profile.attach([crate::Identity::new_unchecked(kind, value)]);
            }
        }
    }
    profile.version -= 1;
}

fn restore(map: &mut Map<String, Value>, key: &str, before: &Option<Value>) {
    match before {
        Some(value) => {
            map.insert(key.to_owned(), value.clone());
        }
        None => {
            map.remove(key);
        }
    }
}

fn diff_maps(
    prefix: &str,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    out: &mut Vec<KeyChange>,
) {
    for (key, old) in before {
        match after.get(key) {
            Some(new) if new == old => {}
            new => out.push(KeyChange {
                key: dotted(prefix, key),
                before: Some(old.clone()),
                after: new.cloned(),
            }),
        }
    }
    for (key, new) in after {
        if !before.contains_key(key) {
            out.push(KeyChange {
                key: dotted(prefix, key),
                before: None,
                after: Some(new.clone()),
            });
        }
    }
}

/// `prefix.key`, without the formatting machinery (a bulk import builds one per property).
fn dotted(prefix: &str, key: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1 + key.len());
    out.push_str(prefix);
    out.push('.');
    out.push_str(key);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Identity, ProfileId};
    use proptest::prelude::*;
    use serde_json::json;

    fn profile(properties: Value, ids: &[(&str, &str)]) -> Profile {
        let mut p = Profile::new(ProfileId("p".into()), Timestamp::UNIX_EPOCH, 1.0);
        p.properties = properties.as_object().unwrap().clone();
        p.attach(ids.iter().map(|(k, v)| Identity::new_unchecked(k, v)));
        p
    }

    #[test]
    fn a_diff_names_only_what_changed() {
        let before = profile(
            json!({"plan": "free", "same": 1, "gone": true}),
            &[("user_id", "u1"), ("email", "a@b.c")],
        );
        let after = profile(
            json!({"plan": "pro", "same": 1, "new": [1]}),
            &[("user_id", "u1"), ("anonymous_id", "x")],
        );
        let changes = diff(Some(&before), &after);
        let keys: Vec<&str> = changes.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "properties.gone",
                "properties.plan",
                "properties.new",
                "identities.email",
                "identities.anonymous_id"
            ]
        );
        assert_eq!(
            changes[1],
            KeyChange {
                key: "properties.plan".into(),
                before: Some(json!("free")),
                after: Some(json!("pro"))
            }
        );
        assert_eq!(changes[3].after, None);
    }

    #[test]
    fn a_creation_lists_every_key_with_no_before() {
        let created = profile(json!({"a": 1}), &[("user_id", "u1")]);
        let changes = diff(None, &created);
        assert!(changes.iter().all(|c| c.before.is_none()));
        assert_eq!(
            changes.len(),
            3,
            "properties.a, computed.percent, identities.user_id: {changes:?}"
        );
    }

    fn object() -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map(
            "[a-d]",
            prop_oneof![
                Just(json!(1)),
                Just(json!("x")),
                Just(json!({"n": 2})),
                Just(Value::Null)
            ],
            0..4,
        )
        .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn undoing_a_diff_on_after_gives_before(before in object(), after in object(), ids in prop::collection::vec(("[ab]", "[xy]"), 0..3)) {
            let ids: Vec<(&str, &str)> = ids.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let b = profile(Value::Object(before), &ids);
            let mut a = profile(Value::Object(after), &ids[..ids.len() / 2]);
            a.version = b.version + 1;
            let changes = diff(Some(&b), &a);
            undo(&mut a, &changes);
            prop_assert_eq!(a, b);
        }

        #[test]
        fn replaying_a_diff_on_before_gives_after(before in object(), after in object()) {
            let (b, a) = (profile(Value::Object(before), &[]), profile(Value::Object(after.clone()), &[]));
            let mut replayed = b.properties.clone();
            for change in diff(Some(&b), &a) {
                let key = change.key.strip_prefix("properties.").unwrap().to_owned();
                match change.after {
                    Some(v) => { replayed.insert(key, v); }
                    None => { replayed.remove(&key); }
                }
            }
            prop_assert_eq!(replayed, after);
        }
    }
}
