//! Merging profiles that turn out to be one person (an anonymous id meets a user id).
//!
//! The rules are explicit and safe:
//! - profiles that carry different `user_id`s are never merged;
//! - a profile with a `user_id` survives over anonymous ones; otherwise the oldest survives;
//! - the survivor's property values win; keys it lacks are taken from the absorbed profiles,
//!   oldest first, and each taken key remembers the profile it came from;
//! - activity (sessions, event counts, aggregates) is combined as if the survivor had seen
//!   every profile's events, and the computed values derived from it are rewritten; other
//!   numeric computed values are added; `percent` stays the survivor's;
//! - the survivor keeps its location, device and company; those it lacks come from the most
//!   recently updated absorbed profile that has them;
//! - the survivor carries every identity and the earliest creation time.

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::activity::ActivityRules;
use crate::identity::IdentityKind;
use crate::{Profile, ProfileId};

/// A merge the rules refuse; nothing changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MergeRefused(pub String);

/// The result of merging: the survivor as it will be stored, and where its taken keys came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub survivor: Profile,
    /// The profiles absorbed, as they were before the merge (kept for undo).
    pub absorbed: Vec<Profile>,
    /// `properties.<key>` or `computed.<key>` → the absorbed profile the value came from.
    pub sources: Map<String, Value>,
}

fn user_ids(profile: &Profile) -> impl Iterator<Item = &str> {
    profile
        .identities
        .iter()
        .filter(|i| i.kind.as_str() == IdentityKind::USER_ID)
        .map(|i| i.value.as_str())
}

/// Merges two or more profiles into one, by the rules above.
pub fn merge(
    mut profiles: Vec<Profile>,
    now: Timestamp,
    rules: &ActivityRules,
) -> Result<Merged, MergeRefused> {
    assert!(profiles.len() >= 2, "a merge needs two profiles");
    let mut distinct: Vec<(&str, &ProfileId)> = Vec::new();
    for profile in &profiles {
        for user_id in user_ids(profile) {
            if let Some((other, owner)) = distinct.iter().find(|(u, _)| *u != user_id) {
                return Err(MergeRefused(format!(
                    "profiles `{owner}` (user_id `{other}`) and `{}` (user_id `{user_id}`) are different known users; they are never merged",
                    profile.id
                )));
            }
            distinct.push((user_id, &profile.id));
        }
    }
    // Oldest first; the survivor is the one with a user_id, else the oldest.
    profiles.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let survivor_at = profiles
        .iter()
        .position(|p| user_ids(p).next().is_some())
        .unwrap_or(0);
    let mut survivor = profiles.remove(survivor_at);
    let absorbed = profiles;

    let mut sources = Map::new();
    // `set_once` keys keep the value of the oldest profile that set them once.
    let set_once: std::collections::BTreeSet<String> = std::iter::once(&survivor)
        .chain(&absorbed)
        .flat_map(|p| p.set_once.iter().cloned())
        .collect();
    let mut oldest_first: Vec<&Profile> = std::iter::once(&survivor).chain(&absorbed).collect();
    oldest_first.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let mut kept = Vec::new();
    for key in &set_once {
        let origin = oldest_first.iter().find(|p| {
            p.set_once.contains(key) && p.properties.get(key).is_some_and(|v| !v.is_null())
        });
        if let Some(origin) = origin {
            kept.push((
                key.clone(),
                origin.properties[key].clone(),
                origin.id.clone(),
            ));
        }
    }
    for (key, value, origin) in kept {
        if origin != survivor.id {
            sources.insert(format!("properties.{key}"), Value::String(origin.0.clone()));
        }
        survivor.properties.insert(key, value);
    }
    survivor.set_once = set_once;
    for other in &absorbed {
        for (key, value) in &other.properties {
            if !survivor.properties.contains_key(key) {
                survivor.properties.insert(key.clone(), value.clone());
                sources.insert(
                    format!("properties.{key}"),
                    Value::String(other.id.0.clone()),
                );
            }
        }
        for (key, value) in &other.computed {
            if rules.derives(key) {
                if !survivor.computed.contains_key(key) && !other.activity.is_empty() {
                    // A windowed aggregate: kept until the next event recomputes it.
                    survivor.computed.insert(key.clone(), value.clone());
                }
                continue;
            }
            match (survivor.computed.get_mut(key), value) {
                (Some(Value::Number(mine)), Value::Number(theirs)) => {
                    if let Some(sum) = add(mine, theirs) {
                        *mine = sum;
                    }
                }
                (Some(_), _) => {}
                (None, value) => {
                    survivor.computed.insert(key.clone(), value.clone());
                    sources.insert(format!("computed.{key}"), Value::String(other.id.0.clone()));
                }
            }
        }
        survivor.attach(other.identities.iter().cloned());
        survivor.created_at = survivor.created_at.min(other.created_at);
        survivor.activity.absorb(&other.activity, rules);
    }
    survivor
        .activity
        .write_computed(&mut survivor.computed, rules);
    let mut newest_first: Vec<&Profile> = absorbed.iter().collect();
    newest_first.sort_by(|a, b| (b.updated_at, &b.id).cmp(&(a.updated_at, &a.id)));
    for other in newest_first {
        if survivor.location.is_empty() {
            survivor.location = other.location.clone();
        }
        if survivor.device.is_empty() {
            survivor.device = other.device.clone();
        }
        if survivor.company.is_none() {
            survivor.company = other.company.clone();
        }
    }
    survivor.touch(now);
    Ok(Merged {
        survivor,
        absorbed,
        sources,
    })
}

fn add(a: &serde_json::Number, b: &serde_json::Number) -> Option<serde_json::Number> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => x.checked_add(y).map(Into::into),
        _ => serde_json::Number::from_f64(a.as_f64()? + b.as_f64()?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;
    use proptest::prelude::*;
    use serde_json::json;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn profile(
        id: &str,
        created: i64,
        ids: &[(&str, &str)],
        properties: Value,
        computed: Value,
    ) -> Profile {
        let mut p = Profile::new(ProfileId(id.into()), at(created), 10.0);
        p.attach(ids.iter().map(|(k, v)| Identity::new_unchecked(k, v)));
        p.properties = properties.as_object().unwrap().clone();
        p.computed.extend(computed.as_object().unwrap().clone());
        p
    }

    #[test]
    fn the_known_user_survives_and_keeps_its_values() {
        let anon = profile(
            "anon",
            0,
            &[("anonymous_id", "a1")],
            json!({"plan": "free", "theme": "dark"}),
            json!({"sessions": 2}),
        );
        let known = profile(
            "known",
            5,
            &[("user_id", "u1")],
            json!({"plan": "pro"}),
            json!({"sessions": 3, "percent": 77.0}),
        );
        let merged = merge(vec![anon, known], at(9), &ActivityRules::default()).unwrap();
        assert_eq!(merged.survivor.id.0, "known");
        assert_eq!(
            Value::Object(merged.survivor.properties.clone()),
            json!({"plan": "pro", "theme": "dark"})
        );
        assert_eq!(merged.survivor.computed["sessions"], json!(5));
        assert_eq!(merged.survivor.computed["percent"], json!(77.0));
        assert_eq!(merged.survivor.created_at, at(0));
        assert_eq!(merged.survivor.identities.len(), 2);
        assert_eq!(
            merged.sources,
            json!({"properties.theme": "anon"})
                .as_object()
                .unwrap()
                .clone()
        );
        assert_eq!(merged.absorbed[0].id.0, "anon");
    }

    #[test]
    fn set_once_keys_keep_the_oldest_value() {
        let mut anon = profile(
            "anon",
            0,
            &[("anonymous_id", "a1")],
            json!({"first_page": "/landing", "plan": "free"}),
            json!({}),
        );
        anon.set_once.insert("first_page".into());
        let mut known = profile(
            "known",
            5,
            &[("user_id", "u1")],
            json!({"first_page": "/pricing", "plan": "pro"}),
            json!({}),
        );
        known.set_once.insert("first_page".into());
        let merged = merge(vec![known, anon], at(9), &ActivityRules::default()).unwrap();
        assert_eq!(merged.survivor.id.0, "known");
        assert_eq!(
            merged.survivor.properties["first_page"],
            json!("/landing"),
            "the oldest set_once value wins"
        );
        assert_eq!(
            merged.survivor.properties["plan"],
            json!("pro"),
            "other keys: the survivor's value wins"
        );
        assert_eq!(merged.sources["properties.first_page"], json!("anon"));
        assert!(merged.survivor.set_once.contains("first_page"));
    }

    #[test]
    fn without_a_user_id_the_oldest_survives() {
        let young = profile("young", 5, &[("anonymous_id", "a2")], json!({}), json!({}));
        let old = profile("old", 1, &[("anonymous_id", "a1")], json!({}), json!({}));
        assert_eq!(
            merge(vec![young, old], at(9), &ActivityRules::default())
                .unwrap()
                .survivor
                .id
                .0,
            "old"
        );
    }

    #[test]
    fn different_user_ids_are_never_merged() {
        let a = profile("a", 0, &[("user_id", "u1")], json!({}), json!({}));
        let b = profile("b", 1, &[("user_id", "u2")], json!({}), json!({}));
        assert!(merge(vec![a, b], at(9), &ActivityRules::default()).is_err());
    }

    fn arbitrary(id: String) -> impl Strategy<Value = Profile> {
        (
            0..100i64,
            prop::option::of("[ab]"),
            prop::collection::btree_map("[a-e]", 0..5i64, 0..4),
        )
            .prop_map(move |(created, anon, props)| {
                let mut p = Profile::new(ProfileId(id.clone()), at(created), 1.0);
                if let Some(a) = anon {
                    p.attach([Identity::new_unchecked(
                        "anonymous_id",
                        &format!("{a}-{id}"),
                    )]);
                }
                p.properties = props.into_iter().map(|(k, v)| (k, json!(v))).collect();
                p
            })
    }

    proptest! {
        #[test]
        fn a_merge_loses_no_key_no_identity_and_keeps_survivor_values(a in arbitrary("p1".into()), b in arbitrary("p2".into()), c in arbitrary("p3".into())) {
            let all = vec![a, b, c];
            let merged = merge(all.clone(), at(1000), &ActivityRules::default()).unwrap();
            let survivor_before = all.iter().find(|p| p.id == merged.survivor.id).unwrap();
            for p in &all {
                for key in p.properties.keys() {
                    prop_assert!(merged.survivor.properties.contains_key(key));
                }
                for identity in &p.identities {
                    prop_assert!(merged.survivor.identities.contains(identity));
                }
                prop_assert!(merged.survivor.created_at <= p.created_at);
            }
            for (key, value) in &survivor_before.properties {
                prop_assert_eq!(merged.survivor.properties.get(key), Some(value));
            }
            prop_assert_eq!(merged.absorbed.len(), 2);
        }
    }
}
